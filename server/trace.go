package server

import (
	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/tracing"
)

const localTrace = "trace"

// traceMiddleware continues the caller's traceparent (or starts a trace) and
// sends it back on every response.
func traceMiddleware(c *fiber.Ctx) error {
	tc := tracing.Continue(c.Get("traceparent"))
	c.Locals(localTrace, tc)
	c.SetUserContext(tracing.With(c.UserContext(), tc))
	c.Set("traceparent", tc.String())
	return c.Next()
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
