package bus

import (
	"cmp"
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/nodes"
)

// PublishEvent implements [events.Publisher]: it publishes the CloudEvent to
// <prefix>.events.<instance>.<type>, which the EVENTS stream captures, with
// the traceparent header and content-type application/cloudevents+json.
// There is no Nats-Msg-Id: an event is published once (never retried), its
// id is in the body, and the stream's duplicate window would otherwise hold
// every event id of the last two minutes in the server's memory (millions
// under load).
//
// Events go out as core NATS messages: a publication neither waits for nor
// pays for a JetStream acknowledgement, which on the publishing path costs
// more than the event itself. One event in
// ackEvery (and the first) asks for an acknowledgement anyway, so a stream
// that refuses events (deleted, out of storage) shows in the log within
// ackEvery events. Nothing is retried either way: the event log in the
// database is the durable record, and webhooks have their own outbox.
func (b *Bus) PublishEvent(ctx context.Context, ce *events.CloudEvent, body []byte) error {
	b.mu.Lock()
	nc, js := b.nc, b.js
	b.mu.Unlock()
	if nc == nil || js == nil {
		return ErrNotStarted
	}
	m := nats.NewMsg(b.subjects.Event(ce.Instance, ce.Type))
	m.Data = body
	m.Header.Set("Content-Type", "application/cloudevents+json")
	if ce.TraceParent != "" {
		m.Header.Set(HeaderTraceParent, ce.TraceParent)
	}
	if b.cfg.Replica != "" {
		m.Header.Set(HeaderReplica, b.cfg.Replica)
	}
	if b.eventsPublished.Add(1)%ackEvery == 1 {
		_, err := js.PublishMsgAsync(m)
		return err
	}
	return nc.PublishMsg(m)
}

// ackEvery: one published event in ackEvery asks JetStream for an
// acknowledgement (see PublishEvent).
const ackEvery = 64

var _ events.Publisher = (*Bus)(nil)

// Enqueue queues a node execution on the trigger stream (Prefer:
// respond-async). The request was authenticated by HTTP: instead of the
// user's token, the trigger carries [HeaderAuth], an HMAC only statusflow
// can compute. Nats-Msg-Id is the idempotency key when given, else the
// pre-assigned message id, and the consumer uses it as the idempotency key;
// the pre-assigned message id travels in [HeaderMessageID]. Enqueue returns
// once JetStream has stored the trigger.
func (b *Bus) Enqueue(ctx context.Context, nodeID string, req nodes.ExecuteRequest) error {
	js, err := b.jetStream()
	if err != nil {
		return errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	key := signKey(b.authHash())
	body, err := json.Marshal(struct {
		Input  json.RawMessage `json:"input"`
		Origin nodes.Origin    `json:"origin"`
	}{req.Input, req.Origin})
	if err != nil {
		return errcode.Wrap(errcode.CodeInvalid, "Invalid request body", err)
	}
	m := nats.NewMsg(b.subjects.Trigger(nodeID, req.Instance))
	m.Data = body
	msgID := cmp.Or(req.IdempotencyKey, req.MessageID, uuid.NewString())
	m.Header.Set(nats.MsgIdHdr, msgID)
	if req.MessageID != "" {
		m.Header.Set(HeaderMessageID, req.MessageID)
	}
	if req.TraceParent != "" {
		m.Header.Set(HeaderTraceParent, req.TraceParent)
	}
	m.Header.Set(HeaderAuth, sign(key, m.Subject, msgID, req.MessageID, body))
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return errcode.Wrap(errcode.CodeInternal, "Could not queue the request", err)
	}
	return nil
}

func (b *Bus) authHash() string {
	if b.auth == nil {
		return ""
	}
	return b.auth.AccountHash()
}
