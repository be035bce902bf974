package server

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/tracing"
)

const localTrace = "trace"

// traceMiddleware continues the caller's traceparent (or starts a trace) in
// a server span, and sends the span's traceparent back on every response.
func traceMiddleware(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if parent, ok := tracing.Parse(c.Get("traceparent")); ok {
		ctx = tracing.With(ctx, parent)
	}
	ctx, end := tracing.StartWith(ctx, "HTTP "+utils.CopyString(c.Method()), trace.WithSpanKind(trace.SpanKindServer))
	tc, _ := tracing.From(ctx)
	c.Locals(localTrace, tc)
	c.SetUserContext(ctx)
	c.Set("traceparent", tc.String())
	err := c.Next()
	end(err)
	return err
}

// traceOf returns the request's trace context, starting one for requests that
// failed before the middleware ran.
func traceOf(c *fiber.Ctx) tracing.Context {
	if tc, ok := c.Locals(localTrace).(tracing.Context); ok {
		return tc
	}
	tc := tracing.Continue(c.Get("traceparent"))
	c.Locals(localTrace, tc)
	return tc
}
