package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/backoff"
	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/tracing"
)

// HandlerFunc handles one JetStream message. It never acks: the runner acks
// on nil, terminates a message that was dead-lettered ([DeadLetteredError]) and
// NAKs with backoff on any other error.
type HandlerFunc func(ctx context.Context, msg jetstream.Msg) error

// Middleware wraps a handler. In [Chain] the first middleware runs outermost.
type Middleware func(HandlerFunc) HandlerFunc

// Chain wraps h in mws; Chain(h, a, b) runs a, then b, then h.
func Chain(h HandlerFunc, mws ...Middleware) HandlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Headers the bus reads and writes. Names are part of the contract.
const (
	// HeaderToken carries the TokenAccount or a TokenInstance on a trigger.
	HeaderToken = "token"
	// HeaderTraceParent is the W3C trace context.
	HeaderTraceParent = "traceparent"
	// HeaderReplica names the cluster replica that published an event or
	// a QR code (clustering on).
	HeaderReplica = "Statusflow-Replica"
	// HeaderReplyTo names a subject that gets the execute result of a
	// trigger once it is final (success or dead-lettered). The request door
	// (<prefix>.request.…) sets it to the requester's inbox.
	HeaderReplyTo = "Statusflow-Reply-To"
	// HeaderAuth is set by statusflow's own Enqueue (Prefer: respond-async):
	// an HMAC over the trigger with a key derived from the TokenAccount's
	// hash, standing for the HTTP authentication already done. A trigger
	// carrying it is never checked against HeaderToken.
	HeaderAuth = "Statusflow-Auth"
	// HeaderMessageID pre-assigns the WhatsApp message id. Honoured only on
	// triggers signed with HeaderAuth.
	HeaderMessageID = "Statusflow-Message-Id"

	// DLQ headers, on each message in <prefix>.dlq.<nodeId>.<instance>.
	// The original headers are kept, except HeaderToken and HeaderAuth.

	// HeaderDLQReason is the human-readable reason (the error message).
	HeaderDLQReason = "Statusflow-Dlq-Reason"
	// HeaderDLQStatus is the internal status (invalid_request,
	// instance_not_found, node_not_found, unauthorized, forbidden,
	// max_deliveries, …).
	HeaderDLQStatus = "Statusflow-Dlq-Status"
	// HeaderDLQSubject is the trigger's original subject.
	HeaderDLQSubject = "Statusflow-Dlq-Subject"
	// HeaderDLQDeliveries is how many times the trigger was delivered.
	HeaderDLQDeliveries = "Statusflow-Dlq-Deliveries"
	// HeaderDLQStreamSeq is the trigger's sequence in the triggers stream.
	HeaderDLQStreamSeq = "Statusflow-Dlq-Stream-Seq"
	// HeaderDLQTime is when it was dead-lettered (RFC 3339).
	HeaderDLQTime = "Statusflow-Dlq-Time"
)

// DLQ statuses the bus adds to the core's codes: the bus codes of
// [errcode], as the strings [HeaderDLQStatus] carries.
const (
	// DLQStatusUnauthorized: missing or unknown token (HTTP 401).
	DLQStatusUnauthorized = string(errcode.CodeUnauthorized)
	// DLQStatusForbidden: an instance token used on another instance (HTTP 403).
	DLQStatusForbidden = string(errcode.CodeForbidden)
	// DLQStatusMaxDeliveries: a retryable failure that did not clear within
	// [Config.MaxDeliver] deliveries.
	DLQStatusMaxDeliveries = string(errcode.CodeMaxDeliveries)
	// DLQStatusBadSubject: a subject that names no node and instance.
	DLQStatusBadSubject = string(errcode.CodeBadSubject)
)

// PermanentError marks a failure that can never succeed: the DLQ middleware
// dead-letters it on the first delivery. A *errcode.Error whose code is not
// [errcode.Code.Retryable] is permanent too.
type PermanentError struct {
	// Code is the internal status put in [HeaderDLQStatus].
	Code errcode.Code
	// Message is what a user reads, put in [HeaderDLQReason].
	Message string
	Err     error
}

func (e *PermanentError) Error() string {
	if e.Err != nil && e.Err.Error() != e.Message {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *PermanentError) Unwrap() error { return e.Err }

// Is matches any *PermanentError.
func (e *PermanentError) Is(target error) bool { _, ok := target.(*PermanentError); return ok }

// PanicError is a recovered panic. It is retryable: MaxDeliver bounds it.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// DeadLetteredError says the message was published to the DLQ; the runner
// terminates it. Err is the failure that sent it there.
type DeadLetteredError struct {
	Subject string
	Err     error
}

func (e *DeadLetteredError) Error() string {
	return "dead-lettered to " + e.Subject + ": " + e.Err.Error()
}

func (e *DeadLetteredError) Unwrap() error { return e.Err }

// IsPermanent reports whether err can never succeed on a retry.
func IsPermanent(err error) bool {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true
	}
	// A cause that knows it is final, whatever its code says: WhatsApp's
	// server refusing the message in its ack (whatsapp.RefusedError) is a
	// send_failed that no redelivery can fix.
	var final interface{ Permanent() bool }
	if errors.As(err, &final) && final.Permanent() {
		return true
	}
	var se *errcode.Error
	if errors.As(err, &se) {
		return !se.Code.Retryable()
	}
	return false
}

// reasonOf returns the DLQ status and reason of an error.
func reasonOf(err error) (statusCode, reason string) {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return string(pe.Code), pe.Message
	}
	var se *errcode.Error
	if errors.As(err, &se) {
		return string(se.Code), se.Message
	}
	var pan *PanicError
	if errors.As(err, &pan) {
		return string(errcode.CodeInternal), pan.Error()
	}
	return string(errcode.CodeInternal), err.Error()
}

// Recover turns a panic in the handler into a [PanicError].
func Recover(next HandlerFunc) HandlerFunc {
	return func(ctx context.Context, m jetstream.Msg) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		return next(ctx, m)
	}
}

// Timeout bounds one handling of a message.
func Timeout(d time.Duration) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m jetstream.Msg) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, m)
		}
	}
}

// msgPublisher is what the DLQ middleware needs: a JetStream publish.
type msgPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// DeadLetter publishes a failed message to the subject dlqSubject returns when
// the error is permanent ([IsPermanent]) or the message was delivered
// maxDeliver times, then returns a [DeadLetteredError] so the runner
// terminates it. The payload is kept; the reason goes in the Statusflow-Dlq-*
// headers; the token headers are dropped. If the DLQ publish fails, its error
// is joined to the original and returned as is: the runner NAKs, nothing is
// lost. The DLQ message's Nats-Msg-Id is "<stream>:<seq>", so a trigger
// dead-lettered twice (a crash between publish and Term) is stored once.
func DeadLetter(pub msgPublisher, dlqSubject func(subject string) string, maxDeliver int) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m jetstream.Msg) error {
			err := next(ctx, m)
			if err == nil {
				return nil
			}
			md, mdErr := m.Metadata()
			delivered := uint64(1)
			if mdErr == nil {
				delivered = md.NumDelivered
			}
			permanent := IsPermanent(err)
			if !permanent && delivered < uint64(maxDeliver) {
				return err
			}
			code, reason := reasonOf(err)
			if !permanent {
				code, reason = DLQStatusMaxDeliveries, fmt.Sprintf("gave up after %d deliveries: %s", delivered, reason)
			}
			dm := nats.NewMsg(dlqSubject(m.Subject()))
			dm.Data = m.Data()
			for k, vs := range m.Headers() {
				if k == HeaderToken || k == HeaderAuth || k == nats.MsgIdHdr {
					continue
				}
				dm.Header[k] = append([]string(nil), vs...)
			}
			dm.Header.Set(HeaderDLQReason, reason)
			dm.Header.Set(HeaderDLQStatus, code)
			dm.Header.Set(HeaderDLQSubject, m.Subject())
			dm.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(delivered, 10))
			dm.Header.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
			if mdErr == nil {
				dm.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
				dm.Header.Set(nats.MsgIdHdr, md.Stream+":"+strconv.FormatUint(md.Sequence.Stream, 10))
			}
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, perr := pub.PublishMsg(pctx, dm); perr != nil {
				return errors.Join(err, fmt.Errorf("publish to DLQ %s: %w", dm.Subject, perr))
			}
			return &DeadLetteredError{Subject: dm.Subject, Err: err}
		}
	}
}

// Trace continues the message's traceparent (or starts a trace) in a
// consumer span, stores it in the context for the handler, logs the outcome
// with the trace id and counts redeliveries and dead letters
// (statusflow_trigger_redeliveries_total, statusflow_trigger_dlq_total).
func Trace(log *slog.Logger) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m jetstream.Msg) error {
			node := triggerNode(m.Subject())
			ctx = tracing.Extract(ctx, tracing.Header(m.Headers()))
			ctx, end := tracing.StartWith(ctx, "trigger "+node, trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject())))
			tc, _ := tracing.From(ctx)
			start := time.Now()
			err := next(ctx, m)
			end(err)
			attrs := []any{"subject", m.Subject(), "traceId", tc.TraceID, "duration", time.Since(start)}
			if md, mdErr := m.Metadata(); mdErr == nil {
				attrs = append(attrs, "delivery", md.NumDelivered, "streamSeq", md.Sequence.Stream)
				if md.NumDelivered > 1 {
					metrics.TriggerRedelivered(node)
				}
			}
			var dead *DeadLetteredError
			switch {
			case err == nil:
				log.Debug("trigger done", attrs...)
			case errors.As(err, &dead):
				reason, _ := reasonOf(dead.Err)
				if !IsPermanent(dead.Err) {
					reason = DLQStatusMaxDeliveries
				}
				metrics.TriggerDeadLettered(node, reason)
				log.Warn("trigger dead-lettered", append(attrs, "dlq", dead.Subject, "err", dead.Err)...)
			default:
				log.Warn("trigger failed, will retry", append(attrs, "err", err)...)
			}
			return err
		}
	}
}

// triggerNode is the node id of a <prefix>.<kind>.<nodeId>.<instance>
// subject (the node id may hold dots), for metric labels; "_invalid" when
// the subject has no such shape.
func triggerNode(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) < 4 {
		return "_invalid"
	}
	return strings.Join(parts[2:len(parts)-1], ".")
}

// Backoff returns the NAK delay of the attempt-th failed delivery (1-based):
// base·2^(attempt-1), capped at max, with ±20% jitter.
func Backoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		return max(backoff.Exponential(base, limit, attempt, rand.Float64()), time.Millisecond)
	}
}

// runner drives the ack protocol around a handler: Ack on nil, Term after a
// [DeadLetteredError], NakWithDelay(backoff(attempt)) otherwise, and
// InProgress every inProgress while the handler runs so slow work (media
// download, conversion) is not redelivered.
type runner struct {
	handler    HandlerFunc
	backoff    func(attempt int) time.Duration
	inProgress time.Duration
	log        *slog.Logger
}

func (r *runner) run(ctx context.Context, m jetstream.Msg) {
	done := make(chan struct{})
	ticker := time.NewTicker(r.inProgress)
	go func() {
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				m.InProgress()
			}
		}
	}()
	err := r.handler(ctx, m)
	close(done)

	var dead *DeadLetteredError
	var ackErr error
	switch {
	case err == nil:
		ackErr = m.Ack()
	case errors.As(err, &dead):
		ackErr = m.Term()
	default:
		attempt := 1
		if md, mdErr := m.Metadata(); mdErr == nil {
			attempt = int(md.NumDelivered)
		}
		ackErr = m.NakWithDelay(r.backoff(attempt))
	}
	if ackErr != nil {
		r.log.Warn("trigger ack failed; it will be redelivered", "subject", m.Subject(), "err", ackErr)
	}
}
