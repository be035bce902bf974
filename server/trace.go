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
// Both go through OpenTelemetry's W3C propagator.
func traceMiddleware(c *fiber.Ctx) error {
	ctx := tracing.Extract(c.UserContext(), requestHeaders{c})
	ctx, end := tracing.StartWith(ctx, "HTTP "+utils.CopyString(c.Method()), trace.WithSpanKind(trace.SpanKindServer))
	tc, _ := tracing.From(ctx)
	c.Locals(localTrace, tc)
	c.SetUserContext(ctx)
	tracing.Inject(ctx, responseHeaders{c})
	err := c.Next()
	end(err)
	return err
}

// traceOf returns the request's trace position (the server span's), starting
// one for requests that failed before the middleware ran.
func traceOf(c *fiber.Ctx) tracing.Context {
	if tc, ok := c.Locals(localTrace).(tracing.Context); ok {
		return tc
	}
	tc := tracing.Continue(c.Get("traceparent"))
	c.Locals(localTrace, tc)
	return tc
}

// requestHeaders are a request's headers as a propagation carrier.
type requestHeaders struct{ c *fiber.Ctx }

// Get copies the value: fasthttp reuses the buffer under it, and a
// tracestate is kept in the span context past the request.
func (h requestHeaders) Get(key string) string {
	if v := h.c.Get(key); v != "" {
		return utils.CopyString(v)
	}
	return ""
}

func (requestHeaders) Set(string, string) {}
func (requestHeaders) Keys() []string     { return nil }

// responseHeaders are a response's headers as a propagation carrier.
type responseHeaders struct{ c *fiber.Ctx }

func (h responseHeaders) Get(key string) string { return string(h.c.Response().Header.Peek(key)) }
func (h responseHeaders) Set(key, value string) { h.c.Set(key, value) }
func (responseHeaders) Keys() []string          { return nil }
