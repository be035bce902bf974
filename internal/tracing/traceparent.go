// Package tracing carries W3C trace context through statusflow on
// OpenTelemetry: a tracer provider is always installed (it mints
// time-ordered trace ids even when no exporter is configured), the trace
// travels in a context.Context as OpenTelemetry's span context, and it
// crosses process boundaries (HTTP, NATS headers, webhooks) through the W3C
// TraceContext propagator ([Inject], [Extract]).
package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Context is one position in a trace written as the strings events,
// statuses and schedules store: the trace id shared by every step of a
// request, and the id of the current span. It is a view of an OpenTelemetry
// span context, not a second carrier: [With] and [From] read and write
// OpenTelemetry's span context in a context.Context.
type Context struct {
	TraceID string // 32 lowercase hex digits
	SpanID  string // 16 lowercase hex digits
	Sampled bool
}

// Parse reads a traceparent header ("00-<trace>-<span>-<flags>") with the W3C
// TraceContext propagator. It reports false for anything malformed, including
// the all-zero ids the spec forbids.
func Parse(h string) (Context, bool) {
	sc := propagator.Extract(context.Background(), traceparentCarrier(strings.TrimSpace(h)))
	return From(sc)
}

// Continue returns a child of the caller's traceparent, or a new root when h
// is empty or malformed.
func Continue(h string) Context {
	if parent, ok := Parse(h); ok {
		return parent.Child()
	}
	return New()
}

// New starts a new trace, with the ids the tracer provider mints (its trace
// id begins with the time; see idGenerator).
func New() Context {
	return Context{TraceID: newTraceID().String(), SpanID: newSpanID().String(), Sampled: true}
}

// Child returns a new span id in the same trace, for an event that belongs
// to a trace but has no span of its own.
func (c Context) Child() Context {
	return Context{TraceID: c.TraceID, SpanID: newSpanID().String(), Sampled: c.Sampled}
}

// IsZero reports whether c holds no trace.
func (c Context) IsZero() bool { return c.TraceID == "" }

// String renders the traceparent header value (as the W3C propagator writes
// it for a span context without the random flag).
func (c Context) String() string {
	if c.IsZero() {
		return ""
	}
	flags := "00"
	if c.Sampled {
		flags = "01"
	}
	return "00-" + c.TraceID + "-" + c.SpanID + "-" + flags
}

// SpanContext is c as an OpenTelemetry span context; remote marks a parent
// that came from another process (or from a stored traceparent).
func (c Context) SpanContext(remote bool) trace.SpanContext {
	tid, _ := trace.TraceIDFromHex(c.TraceID)
	sid, _ := trace.SpanIDFromHex(c.SpanID)
	var flags trace.TraceFlags
	if c.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: remote})
}

// Of returns the view of an OpenTelemetry span context; false when sc is
// not valid.
func Of(sc trace.SpanContext) (Context, bool) {
	if !sc.IsValid() {
		return Context{}, false
	}
	return Context{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Sampled: sc.IsSampled()}, true
}

// With returns ctx with c as its OpenTelemetry span context: a remote
// parent for the spans started in it. When ctx's span already is c (a
// traceparent that was rendered from it and parsed again in the same
// process) ctx is returned as it is, so spans stay children of the local
// span.
func With(ctx context.Context, c Context) context.Context {
	if c.IsZero() {
		return ctx
	}
	sc := c.SpanContext(true)
	if cur := trace.SpanContextFromContext(ctx); cur.SpanID() == sc.SpanID() && cur.TraceID() == sc.TraceID() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// From returns the trace position of ctx's OpenTelemetry span context, if
// it has one.
func From(ctx context.Context) (Context, bool) {
	return Of(trace.SpanContextFromContext(ctx))
}

// traceparentCarrier is a single traceparent value as a propagation carrier.
type traceparentCarrier string

func (h traceparentCarrier) Get(key string) string {
	if key == headerTraceParent {
		return string(h)
	}
	return ""
}

func (traceparentCarrier) Set(string, string) {}
func (traceparentCarrier) Keys() []string     { return []string{headerTraceParent} }
