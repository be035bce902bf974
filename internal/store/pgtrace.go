package store

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/tracing"
)

// pgTracer makes PostgreSQL queries and pipelined batches client spans of
// the trace in their context, so a publication's trace shows its database
// round trips. Only while spans are exported, and only inside a trace:
// without an exporter nobody could look them up, and background polls
// (scheduler, outbox) would otherwise each start a trace of their own.
// Statements go in as written, with placeholders: arguments never do.
type pgTracer struct{}

var (
	_ pgx.QueryTracer = pgTracer{}
	_ pgx.BatchTracer = pgTracer{}
)

// pgSpanKey marks a context whose span pgTracer started, so the end hook
// never ends the caller's span.
type pgSpanKey struct{}

func (pgTracer) start(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	if !tracing.Recording() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	attrs = append(attrs, attribute.String("db.system.name", "postgresql"))
	ctx, span := tracing.Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, pgSpanKey{}, span)
}

func (pgTracer) end(ctx context.Context, err error) {
	if span, ok := ctx.Value(pgSpanKey{}).(trace.Span); ok {
		tracing.End(span, err)
	}
}

func (t pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !tracing.Recording() {
		return ctx
	}
	op, _, _ := strings.Cut(strings.TrimSpace(data.SQL), " ")
	return t.start(ctx, strings.ToUpper(op), attribute.String("db.operation.name", strings.ToUpper(op)), attribute.String("db.query.text", data.SQL))
}

func (t pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(ctx, data.Err)
}

func (t pgTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if !tracing.Recording() {
		return ctx
	}
	return t.start(ctx, "BATCH", attribute.String("db.operation.name", "BATCH"), attribute.Int("db.operation.batch.size", data.Batch.Len()))
}

func (pgTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t pgTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(ctx, data.Err)
}
