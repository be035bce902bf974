// Package bus is statusflow's NATS side (API.md §8): an embedded nats-server
// with JetStream by default (or a connection to an existing server), the
// durable trigger consumer, a request-reply door, the CloudEvents publisher
// and the async enqueuer behind `Prefer: respond-async`.
//
// # Subjects (prefix "statusflow" by default, [Config.Prefix])
//
//	<prefix>.trigger.<nodeId>.<instance>   in, JetStream, durable (stream <PREFIX>_TRIGGERS)
//	<prefix>.request.<nodeId>.<instance>   in, core NATS request-reply (queue group statusflow-request)
//	<prefix>.events.<instance>.<type>      out, JetStream (stream <PREFIX>_EVENTS)
//	<prefix>.dlq.<nodeId>.<instance>       out, JetStream (stream <PREFIX>_DLQ)
//
// The node id may contain dots (status.publish); the instance is always the
// last token.
//
// # Triggers
//
// The payload is the execute body without `instance`:
// {"input": {…}, "origin": {…}}, validated against
// schemas/execute.input.json; a JSON object with neither `input` nor
// `origin` is taken as the bare node input. The origin platform defaults to
// "nats". Headers:
//
//   - token: the TokenAccount or a TokenInstance, checked as over HTTP (an
//     instance token must belong to the subject's instance);
//   - Nats-Msg-Id: JetStream drops a duplicate within [Config.DedupWindow]
//     (24 h), and it is the idempotency key of the execution, so a duplicate
//     that reaches the core after JetStream forgot it is a replay. Without
//     it the stream sequence is the key;
//   - traceparent: the trace continues (a new one starts without it);
//   - Statusflow-Reply-To: a subject that gets the execute result.
//
// The consumer is the durable [TriggerDurable] ("statusflow-trigger") on
// <PREFIX>_TRIGGERS (work-queue retention). Each message runs through
// trace/log → reply → DLQ → timeout → recover → handler, and the runner maps
// the outcome with nats.go's ack vocabulary:
//
//   - success: Ack;
//   - a retryable *errcode.Error (disconnected, send_failed, media download or
//     upload failure, internal, idempotency_in_progress) or a panic:
//     NakWithDelay(backoff), 1 s doubling to 1 min with jitter;
//   - a permanent one (invalid input, unknown instance or node, bad token,
//     unusable media), or the [Config.MaxDeliver]-th failed delivery: the
//     message is published to <prefix>.dlq.<nodeId>.<instance> with its
//     payload and headers (not the token) plus Statusflow-Dlq-Reason,
//     -Status, -Subject, -Deliveries, -Stream-Seq and -Time, then Term. If
//     that publish fails, the errors are joined and the message is NAK'd.
//
// InProgress is sent every AckWait/3 while a trigger runs. Every redelivery
// of one stored trigger uses the same WhatsApp message id (derived from its
// stream sequence), so a crash between sending and acking cannot make two
// different statuses.
//
// # Request-reply
//
// A JetStream stream answers a core NATS request on its subjects with its
// PubAck, so `nats req` on a trigger subject gets the PubAck, never the
// result. Requests therefore go to <prefix>.request.<nodeId>.<instance>:
// statusflow copies each into the trigger stream with Statusflow-Reply-To
// set to the requester's inbox, and the consumer answers once the outcome is
// final with {"success":true,"traceId","output"} or
// {"success":false,"error":{"message","status"},"traceId"}. A retryable
// failure is not answered until it succeeds or is dead-lettered. A duplicate
// Nats-Msg-Id is answered at once with status "duplicate".
//
// # Events
//
// [Bus.PublishEvent] publishes each CloudEvent to
// <prefix>.events.<instance>.<type> with traceparent and Content-Type
// application/cloudevents+json (the event id is in the body), as a core NATS
// message the EVENTS stream captures; one in 64 asks for a JetStream
// acknowledgement so a stream that refuses events is logged.
//
// # Async enqueue
//
// [Bus.Enqueue] puts an HTTP `Prefer: respond-async` request on the trigger
// subject without the user's token: Statusflow-Auth carries an HMAC-SHA256
// of the subject, Nats-Msg-Id, pre-assigned message id and payload, keyed by
// a key derived from the TokenAccount's hash, which only statusflow holds.
// A forged or altered one is dead-lettered as unauthorized.
package bus
