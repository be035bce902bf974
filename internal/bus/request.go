package bus

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/errcode"
)

// handleRequest is the request door, <prefix>.request.<nodeId>.<instance>: a
// core NATS request is copied into the trigger stream with [HeaderReplyTo]
// set to the requester's inbox, so it runs the one durable path (auth, DLQ,
// idempotency) and the consumer answers with the execute result. If the
// copy cannot be stored, or it is a duplicate Nats-Msg-Id, the requester is
// answered at once with an error envelope.
func (b *Bus) handleRequest(m *nats.Msg) {
	node, inst, ok := b.subjects.ParseTrigger("request", m.Subject)
	respond := func(code errcode.Code, msg string) {
		if m.Reply != "" {
			m.Respond(replyBody(nil, &errcode.Error{Code: code, Message: msg}, ""))
		}
	}
	if !ok {
		respond(errcode.CodeInvalid, "a request subject is "+b.cfg.Prefix+".request.<nodeId>.<instance>")
		return
	}
	js, err := b.jetStream()
	if err != nil {
		respond(errcode.CodeInternal, "statusflow is stopping")
		return
	}
	fm := nats.NewMsg(b.subjects.Trigger(node, inst))
	fm.Data = m.Data
	for k, vs := range m.Header {
		fm.Header[k] = vs
	}
	fm.Header.Del(HeaderAuth)
	if m.Reply != "" {
		fm.Header.Set(HeaderReplyTo, m.Reply)
	}
	ctx, cancel := context.WithTimeout(b.runCtx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, fm)
	if err != nil {
		respond(errcode.CodeInternal, "Could not queue the request: "+err.Error())
		return
	}
	if ack.Duplicate {
		respond(errcode.CodeDuplicate, "A trigger with this Nats-Msg-Id was already received (stream sequence "+strconv.FormatUint(ack.Sequence, 10)+"); its result went to the first requester")
	}
}
