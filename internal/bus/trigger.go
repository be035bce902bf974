package bus

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
)

// PlatformNATS is the origin platform of a trigger that names none.
const PlatformNATS = "nats"

// Executor runs one node execution: *nodes.Catalog. Errors are
// *errcode.Error: a code that is not [errcode.Code.Retryable] (invalid input,
// unknown node or instance, unusable media) dead-letters the trigger, a
// retryable one NAKs it.
type Executor interface {
	Execute(ctx context.Context, nodeID string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error)
}

// ExecutorFunc adapts a function to [Executor].
type ExecutorFunc func(ctx context.Context, nodeID string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error)

// Execute implements [Executor].
func (f ExecutorFunc) Execute(ctx context.Context, nodeID string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error) {
	return f(ctx, nodeID, req)
}

// Authenticator resolves trigger tokens, with the HTTP rules (auth package).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
	// AccountHash keys the signature of statusflow's own enqueued triggers.
	AccountHash() string
}

// triggerHandler is the innermost handler: subject → auth → decode →
// execute. The outcome is left in the context's box for the reply middleware.
type triggerHandler struct {
	subjects  Subjects
	exec      Executor
	auth      Authenticator
	validator *schemas.Validator
	signKey   []byte
	// streamID distinguishes stream sequences across stream re-creations in
	// the fallback idempotency key.
	streamID string
}

type outcomeKey struct{}

// outcome is filled by the handler and read by the reply middleware.
type outcome struct {
	result *nodes.ExecuteResult
}

func (h *triggerHandler) handle(ctx context.Context, m jetstream.Msg) error {
	nodeID, instance, ok := h.subjects.ParseTrigger("trigger", m.Subject())
	if !ok {
		return &PermanentError{Code: errcode.CodeBadSubject, Message: "a trigger subject is " + h.subjects.Prefix + ".trigger.<nodeId>.<instance>"}
	}
	hdr := m.Headers()
	msgID := hdr.Get(nats.MsgIdHdr)
	signed := false
	if sig := hdr.Get(HeaderAuth); sig != "" {
		if !hmac.Equal([]byte(sig), []byte(sign(h.signKey, m.Subject(), msgID, hdr.Get(HeaderMessageID), m.Data()))) {
			return &PermanentError{Code: errcode.CodeUnauthorized, Message: auth.ErrInvalidToken.Message, Err: errors.New("bad " + HeaderAuth + " signature")}
		}
		signed = true
	} else {
		p, err := h.auth.Authenticate(ctx, hdr.Get(HeaderToken))
		if errors.Is(err, auth.ErrMissingToken) || errors.Is(err, auth.ErrInvalidToken) {
			return &PermanentError{Code: errcode.CodeUnauthorized, Message: errcode.AsError(err).Message}
		}
		if err != nil {
			return errcode.Wrap(errcode.CodeInternal, "Internal error", err)
		}
		if err := p.CanUse(instance); err != nil {
			return &PermanentError{Code: errcode.CodeForbidden, Message: errcode.AsError(err).Message}
		}
	}
	req, err := decodeTrigger(h.validator, m.Data(), instance)
	if err != nil {
		return err
	}
	if tc, ok := tracing.From(ctx); ok {
		req.TraceParent = tc.String()
	}
	req.IdempotencyKey = msgID
	if req.IdempotencyKey == "" {
		// No Nats-Msg-Id: the stream sequence still makes a redelivery after
		// a crash between the send and the ack a replay, not a second send.
		if md, err := m.Metadata(); err == nil {
			req.IdempotencyKey = "nats:" + md.Stream + ":" + h.streamID + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	if signed {
		req.MessageID = hdr.Get(HeaderMessageID)
	}
	if req.MessageID == "" {
		if md, err := m.Metadata(); err == nil {
			req.MessageID = deliveryMessageID(md.Stream, h.streamID, md.Sequence.Stream)
		}
	}
	res, err := h.exec.Execute(ctx, nodeID, req)
	if err != nil {
		return err
	}
	if box, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		box.result = res
	}
	return nil
}

// deliveryMessageID derives the WhatsApp message id of a trigger from its
// place in the stream, so every redelivery of one stored trigger sends the
// same message id: if a process dies after sending but before recording the
// result, the retry is recognisable downstream (the sandbox's primary key,
// WhatsApp's own duplicate detection) instead of a second status. A new
// publication (a new stream sequence) gets a new id.
func deliveryMessageID(stream, streamID string, seq uint64) string {
	sum := sha256.Sum256([]byte("statusflow/trigger\x00" + stream + "\x00" + streamID + "\x00" + strconv.FormatUint(seq, 10)))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(sum[:9]))
}

// decodeTrigger reads a trigger payload: the execute body without
// `instance` ({"input": {…}, "origin": {…}}), validated against
// schemas/execute.input.json with the subject's instance. A JSON object with
// neither `input` nor `origin` is taken as a bare node input. The origin
// platform defaults to "nats".
func decodeTrigger(v *schemas.Validator, data []byte, instance string) (nodes.ExecuteRequest, error) {
	doc, err := schemas.ParseJSON(data)
	if err != nil {
		return nodes.ExecuteRequest{}, err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nodes.ExecuteRequest{}, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: expected a JSON object")
	}
	req := nodes.ExecuteRequest{Instance: instance}
	_, hasInput := obj["input"]
	_, hasOrigin := obj["origin"]
	if !hasInput && !hasOrigin {
		req.Input = json.RawMessage(data)
	} else {
		if in, has := obj["instance"]; has && in != instance {
			return nodes.ExecuteRequest{}, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: instance %q does not match the subject's instance %q", in, instance)
		}
		obj["instance"] = instance
		if err := v.Validate(schemas.ExecuteInput, obj); err != nil {
			return nodes.ExecuteRequest{}, err
		}
		var body struct {
			Input  json.RawMessage `json:"input"`
			Origin nodes.Origin    `json:"origin"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			return nodes.ExecuteRequest{}, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: %s", err)
		}
		req.Input, req.Origin = body.Input, body.Origin
	}
	req.Origin.Platform = cmp.Or(req.Origin.Platform, PlatformNATS)
	return req, nil
}

// signKey derives the HMAC key of enqueued triggers from the TokenAccount's
// hash: only a process that can read the account hash (statusflow itself)
// can sign, and anyone holding the account token could act anyway.
func signKey(accountHash string) []byte {
	m := hmac.New(sha256.New, []byte(accountHash))
	m.Write([]byte("statusflow/bus/enqueue/v1"))
	return m.Sum(nil)
}

// sign is the HeaderAuth value of a trigger: v1 and an HMAC-SHA256 over the
// subject, Nats-Msg-Id, pre-assigned message id and payload.
func sign(key []byte, subject, msgID, messageID string, data []byte) string {
	m := hmac.New(sha256.New, key)
	for _, s := range []string{"v1", subject, msgID, messageID} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write(data)
	return "v1 " + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// replyBody is the execute result as the HTTP execute endpoint answers it.
func replyBody(res *nodes.ExecuteResult, err error, traceID string) []byte {
	if err == nil {
		b, mErr := json.Marshal(struct {
			Success bool   `json:"success"`
			TraceID string `json:"traceId"`
			Output  any    `json:"output"`
		}{true, cmp.Or(res.TraceID, traceID), res.Output})
		if mErr == nil {
			return b
		}
		err = mErr
	}
	code, msg := reasonOf(err)
	e := struct {
		Message string `json:"message"`
		Status  string `json:"status,omitempty"`
	}{Message: msg}
	if c := errcode.Code(code); c.Public() {
		e.Status = code
	}
	b, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Error   any    `json:"error"`
		TraceID string `json:"traceId,omitempty"`
	}{false, e, traceID})
	return b
}

// corePublisher publishes a plain (core NATS) message.
type corePublisher interface {
	PublishMsg(m *nats.Msg) error
}

// Reply answers a trigger that carries [HeaderReplyTo] once its outcome is
// final: the execute result on success, the error envelope when it was
// dead-lettered. A failure that will be retried is not answered.
func Reply(pub corePublisher, log *slog.Logger) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m jetstream.Msg) error {
			box := &outcome{}
			err := next(context.WithValue(ctx, outcomeKey{}, box), m)
			to := m.Headers().Get(HeaderReplyTo)
			var dead *DeadLetteredError
			if to == "" || (err != nil && !errors.As(err, &dead)) {
				return err
			}
			traceID := ""
			if tc, ok := tracing.From(ctx); ok {
				traceID = tc.TraceID
			}
			var body []byte
			if err == nil {
				res := box.result
				if res == nil {
					res = &nodes.ExecuteResult{}
				}
				body = replyBody(res, nil, traceID)
			} else {
				body = replyBody(nil, dead.Err, traceID)
			}
			rm := nats.NewMsg(to)
			rm.Data = body
			tracing.Inject(ctx, tracing.Header(rm.Header))
			if perr := pub.PublishMsg(rm); perr != nil {
				log.Warn("reply to trigger", "to", to, "err", perr)
			}
			return err
		}
	}
}
