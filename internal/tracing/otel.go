package tracing

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names statusflow's tracer.
const InstrumentationName = "github.com/statusflow/statusflow"

// Config says where spans go.
type Config struct {
	// OTLPEndpoint is the OTLP/HTTP collector (OTEL_EXPORTER_OTLP_ENDPOINT,
	// e.g. "http://collector:4318"). Defaults to empty: no exporter, and
	// [Setup] leaves the tracer provider as it is (silent).
	OTLPEndpoint string
	// ServiceName is the resource's service.name. Defaults to "statusflow".
	ServiceName string
	// Exporter, when set, receives the spans instead of OTLP (tests pass
	// tracetest.NewInMemoryExporter). It is exported synchronously.
	Exporter sdktrace.SpanExporter
}

// Setup installs the global OpenTelemetry tracer provider and the W3C
// propagator. With neither OTLPEndpoint nor Exporter it does nothing and
// returns a no-op shutdown: spans are then non-recording and cost almost
// nothing, while trace ids still flow through [Context]. The returned
// shutdown flushes and stops the exporter; call it on exit.
//
// NOTE: the provider is process-global (otel.SetTracerProvider); the last
// Setup wins.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	var opt sdktrace.TracerProviderOption
	switch {
	case cfg.Exporter != nil:
		opt = sdktrace.WithSyncer(cfg.Exporter)
	case cfg.OTLPEndpoint != "":
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.OTLPEndpoint, "/")+"/v1/traces"))
		if err != nil {
			return nil, errors.New("OTEL_EXPORTER_OTLP_ENDPOINT: " + err.Error())
		}
		opt = sdktrace.WithBatcher(exp)
	default:
		return func(context.Context) error { return nil }, nil
	}
	name := cfg.ServiceName
	if name == "" {
		name = "statusflow"
	}
	tp := sdktrace.NewTracerProvider(opt,
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	otel.SetTracerProvider(tp)
	installed.Store(true)
	var once sync.Once
	return func(ctx context.Context) (err error) {
		once.Do(func() { err = tp.Shutdown(ctx) })
		return err
	}, nil
}

// Start starts a span named name as a child of the trace in ctx: the
// OpenTelemetry span already in ctx when it is the current [Context], else a
// remote parent built from the [Context] stored by [With] (a traceparent that
// came over HTTP, NATS or a webhook), else a new trace. The returned ctx
// carries the span both as an OpenTelemetry span and as a [Context] whose
// SpanID is the span's, so events and outgoing traceparent headers name it
// as their parent and every span shares the caller's trace id.
//
// end records err (when non-nil) on the span and ends it; call it exactly once.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	return StartWith(ctx, name, trace.WithAttributes(attrs...))
}

// StartWith is [Start] with OpenTelemetry start options (span kind, links,
// attributes).
func StartWith(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, func(err error)) {
	tc, ok := From(ctx)
	cur := trace.SpanContextFromContext(ctx)
	if !installed.Load() {
		// No provider: an OpenTelemetry span would not record anything, so
		// only the trace position moves on.
		switch {
		case !ok && cur.IsValid():
			tc = Context{TraceID: cur.TraceID().String(), SpanID: cur.SpanID().String(), Sampled: cur.IsSampled()}.Child()
		case !ok:
			tc = New()
		default:
			tc = tc.Child()
		}
		return With(ctx, tc), endNothing
	}
	root := false
	switch {
	case !ok && cur.IsValid():
		tc = Context{TraceID: cur.TraceID().String(), SpanID: cur.SpanID().String(), Sampled: cur.IsSampled()}
	case !ok:
		tc, root = New(), true // tc is used only when no recording provider is installed
		opts = append(opts, trace.WithNewRoot())
	case !cur.IsValid() || cur.TraceID().String() != tc.TraceID || cur.SpanID().String() != tc.SpanID:
		ctx = trace.ContextWithRemoteSpanContext(ctx, tc.SpanContext(true))
	}
	ctx, span := otel.Tracer(InstrumentationName).Start(ctx, name, opts...)
	child := tc.Child() // no recording provider: a fresh id, as Continue does
	if root {
		child = tc
	}
	if sc := span.SpanContext(); sc.IsValid() && sc.SpanID().String() != tc.SpanID {
		child = Context{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Sampled: sc.IsSampled()}
	}
	ctx = With(ctx, child)
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// installed is set once Setup installs a recording provider.
var installed atomic.Bool

// Recording reports whether spans are recorded (Setup installed a
// provider). Inner steps skip their spans when not: with nothing recorded
// they would only mint span ids nobody can look up.
func Recording() bool { return installed.Load() }

func endNothing(error) {}

// SpanContext is c as an OpenTelemetry span context; remote marks a parent
// that came from another process.
func (c Context) SpanContext(remote bool) trace.SpanContext {
	tid, _ := trace.TraceIDFromHex(c.TraceID)
	sid, _ := trace.SpanIDFromHex(c.SpanID)
	var flags trace.TraceFlags
	if c.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: remote})
}
