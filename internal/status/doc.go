// Package status is the publishing core: every front door (HTTP, node
// execute, NATS triggers, inbound hooks) turns its request into a [Command]
// and calls [Service.Execute], which is the only code that publishes or
// deletes a WhatsApp Status.
//
// A publish runs, in order: idempotency (an [Idempotency] claims the
// (instance, key) pair or replays the stored result), the instance's session
// (unknown instance, or not connected → [errcode.ErrDisconnected]), the
// status.accepted event, the message (text built here, media through the
// media port: download, check, convert, upload), the send, and the record of
// the outcome: the status row with its status.published event, or
// status.failed with the error's code. Delete revokes a recorded status the
// same way.
//
// The core talks to its neighbours through small interfaces declared here:
// sessions (internal/whatsapp) that send, the status store (reads, revokes),
// the media preparer (internal/media) and the [Recorder], the one port an
// outcome is recorded through (internal/events: the event with its status
// row or schedule, webhook deliveries and, on the sandbox, the send itself,
// in one transaction; see store.WithDeferred). The core holds no
// transaction. Errors are internal/errcode's vocabulary ([errcode.Error]
// and its [errcode.Code]); front doors map the code to their own answer.
//
// Every step is a span and a latency metric (observe.go); the trace id of
// the command's traceparent is the one in the result, the events and the
// logs.
package status
