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

// headerTraceParent is the W3C header (and NATS header) of the trace context.
const headerTraceParent = "traceparent"

// propagator is the one way a trace crosses a process boundary: HTTP
// requests and responses, NATS message headers, webhook requests.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Config says where spans go.
type Config struct {
	// OTLPEndpoint is the OTLP/HTTP collector (OTEL_EXPORTER_OTLP_ENDPOINT,
	// e.g. "http://collector:4318"). Defaults to empty: no exporter; the
	// always-installed provider still mints ids and records nothing.
	OTLPEndpoint string
	// ServiceName is the resource's service.name. Defaults to "statusflow".
	ServiceName string
	// Exporter, when set, receives the spans instead of OTLP (tests pass
	// tracetest.NewInMemoryExporter). It is exported synchronously.
	Exporter sdktrace.SpanExporter
}

// provider is the installed tracer provider's tracer and whether its spans
// go anywhere.
type provider struct {
	tracer    trace.Tracer
	recording bool
}

var current atomic.Pointer[provider]

// silent is the provider installed when no exporter is configured: it mints
// ids with idGenerator and follows the caller's sampled flag (so the
// traceparent statusflow sends on says what the caller's said), but it has
// no span processor and keeps no attributes, events or links, so a span
// costs its ids and one small allocation.
var silent = sdktrace.NewTracerProvider(
	sdktrace.WithIDGenerator(idGenerator{}),
	sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{}),
	sdktrace.WithResource(resource.Empty()))

func init() { install(silent, false) }

// install makes tp the global tracer provider (instrumented libraries take
// theirs from otel's globals) and the one [Start] uses.
func install(tp trace.TracerProvider, recording bool) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	current.Store(&provider{tracer: tp.Tracer(InstrumentationName), recording: recording})
}

// Setup installs the tracer provider that exports spans: to cfg.Exporter,
// or over OTLP/HTTP to cfg.OTLPEndpoint. With neither it installs the
// silent provider, which mints ids and records nothing. The returned
// shutdown flushes and stops the exporter and puts the silent provider
// back; call it on exit.
//
// NOTE: the provider is process-global (otel.SetTracerProvider); the last
// Setup wins.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
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
		install(silent, false)
		return func(context.Context) error { return nil }, nil
	}
	name := cfg.ServiceName
	if name == "" {
		name = "statusflow"
	}
	tp := sdktrace.NewTracerProvider(opt,
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	install(tp, true)
	var once sync.Once
	return func(ctx context.Context) (err error) {
		once.Do(func() {
			if otel.GetTracerProvider() == trace.TracerProvider(tp) {
				install(silent, false)
			}
			err = tp.Shutdown(ctx)
		})
		return err
	}, nil
}

// Recording reports whether spans are exported (Setup installed an
// exporter). Inner steps skip their spans when not: with nothing recorded
// they would only mint span ids nobody can look up.
func Recording() bool { return current.Load().recording }

// Start starts a span named name as a child of the span context in ctx (a
// local span, or a remote parent from [Extract] or [With]), or as the root
// of a new trace. The returned ctx carries the span, so events, logs and
// outgoing traceparent headers name it as their parent.
//
// end records err (when non-nil) on the span and ends it; call it exactly once.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if len(attrs) == 0 {
		return StartWith(ctx, name)
	}
	return StartWith(ctx, name, trace.WithAttributes(attrs...))
}

// StartWith is [Start] with OpenTelemetry start options (span kind, links,
// attributes).
func StartWith(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, func(err error)) {
	ctx, span := current.Load().tracer.Start(ctx, name, opts...)
	return ctx, func(err error) { End(span, err) }
}

// Tracer is the installed provider's tracer, for spans [Start] cannot
// describe (a span ended by a deferred call that sets more attributes).
func Tracer() trace.Tracer { return current.Load().tracer }

// End records err (when non-nil) on span and ends it.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Inject writes the span context of ctx into carrier (the traceparent
// header); nothing when ctx has none.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	propagator.Inject(ctx, carrier)
}

// Extract returns ctx with the span context carrier holds (a traceparent
// header) as the remote parent of the spans started in it; ctx as it is
// when the header is missing or malformed.
func Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return propagator.Extract(ctx, carrier)
}

// Header is a header map whose keys are used as written (NATS headers are
// case-sensitive, unlike HTTP's), as a propagation carrier:
// tracing.Header(msg.Header).
type Header map[string][]string

func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h Header) Set(key, value string) { h[key] = []string{value} }

func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
