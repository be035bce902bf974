package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/tracing"
)

// BenchmarkPublishTrace is what tracing costs one HTTP publication with no
// exporter, in the calls every version of this package has: the server
// continues the caller's traceparent in a server span and renders it, the
// core parses it back and runs status.publish in a child span, and the
// event's traceparent is rendered and parsed by the recorder. It uses only
// Parse/With/StartWith/Start/From/String so that the same file runs against
// the code before a change (compare ns/op and allocs/op in one run).
func BenchmarkPublishTrace(b *testing.B) {
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b.ReportAllocs()
	for b.Loop() {
		ctx := context.Background()
		if p, ok := tracing.Parse(caller); ok {
			ctx = tracing.With(ctx, p)
		}
		ctx, endHTTP := tracing.StartWith(ctx, "HTTP POST", trace.WithSpanKind(trace.SpanKindServer))
		tc, _ := tracing.From(ctx)
		header := tc.String()
		p, _ := tracing.Parse(header)
		ctx = tracing.With(ctx, p)
		ctx, endPublish := tracing.Start(ctx, "status.publish")
		ev, _ := tracing.From(ctx)
		if got, ok := tracing.Parse(ev.String()); !ok || got.TraceID != p.TraceID {
			b.Fatal("lost the trace")
		}
		endPublish(nil)
		endHTTP(nil)
	}
}
