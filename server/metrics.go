package server

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/schemas"
)

// routeUnmatched labels requests that matched no route (404, 405).
const routeUnmatched = "unmatched"

// observe counts every request in statusflow_http_requests_total by method,
// route pattern (never the raw path, so ids do not explode the series) and
// status, and names the request's span after its route. It answers errors
// itself through the error handler, so the status it records is the one sent.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	code := c.Response().StatusCode()
	method, route := s.routeOf(c, err)
	metrics.HTTPRequest(method, route, code, time.Since(start))
	span := trace.SpanFromContext(c.UserContext())
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route),
		attribute.Int("http.response.status_code", code))
	if code >= 500 {
		span.SetStatus(codes.Error, fiber.ErrInternalServerError.Message)
	}
	return nil
}

// routeOf returns the matched route's method and pattern; both come from the
// route table, so they outlive the request (Fiber reuses its buffers). When
// no route matched, Fiber answers 404 or 405 from the last middleware.
func (s *Server) routeOf(c *fiber.Ctx, err error) (method, route string) {
	r := c.Route()
	var fe *fiber.Error
	if r == nil || errors.As(err, &fe) && (fe.Code == fiber.StatusNotFound || fe.Code == fiber.StatusMethodNotAllowed) && !s.hasRoute(r.Path) {
		return "OTHER", routeUnmatched
	}
	return r.Method, r.Path
}

func (s *Server) hasRoute(path string) bool {
	for _, r := range s.routes {
		if r.Path == path {
			return true
		}
	}
	return false
}

// metricsHandler is GET /metrics: every metric in the Prometheus text format.
func (s *Server) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(metrics.Default.Handler())
}

func (s *Server) registerOps() {
	s.Handle(Route{Method: "GET", Path: "/metrics", Auth: AuthNone, Tag: "meta", Summary: "Prometheus metrics",
		Responses: Responses{200: ""}, ContentType: "text/plain"}, s.metricsHandler())
	s.Handle(Route{Method: "GET", Path: "/api/events/log/:instance", Auth: AuthInstance, Tag: "events",
		Summary:   "The instance's event log (CloudEvents), filtered by traceId, type, source, platform and since, with cursor paging",
		Responses: Responses{200: schemas.EventLogReply}}, s.eventsLog)
}
