package server

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/statusflow/statusflow/internal/cluster"
	"github.com/statusflow/statusflow/internal/tracing"
)

// localForwarded marks a request another replica forwarded here (set on
// the request context in process, so no caller can claim it): it is served
// here, never forwarded again, and not counted against the rate limit a
// second time.
const localForwarded = "statusflow.forwarded"

// SessionForwarder sends the requests of [Route.Session] routes to the
// replica that owns their instance (internal/cluster's *Forwarder is one).
type SessionForwarder interface {
	// Locate returns "" to serve here, the owner's replica id, or the
	// failover gap's error (503 with Retry-After).
	Locate(ctx context.Context, instance string) (owner string, err error)
	// ForwardHTTP sends req to owner and returns its answer, or the gap's error.
	ForwardHTTP(ctx context.Context, owner string, req *cluster.HTTPRequest) (*cluster.HTTPResponse, error)
	// NotHere is the answer to a forwarded request for an instance this
	// replica no longer holds while another does.
	NotHere(instance string) error
	// MaxForwardBody is the largest body a request can be forwarded with.
	MaxForwardBody() int
}

// SetForwarder makes the [Route.Session] routes run where their instance's
// session is (clustering on). Call before serving. It returns the handler
// that serves the requests other replicas forward here, through this
// server's own handler chain.
func (s *Server) SetForwarder(f SessionForwarder) cluster.HTTPHandler {
	s.forwarder = f
	h := s.app.Handler()
	return func(ctx context.Context, req *cluster.HTTPRequest) *cluster.HTTPResponse {
		return serveForwarded(h, req)
	}
}

// serveForwarded runs a forwarded request through h (the Fiber app: trace,
// hygiene, auth, the route's handlers) and returns its answer.
func serveForwarded(h fasthttp.RequestHandler, req *cluster.HTTPRequest) *cluster.HTTPResponse {
	var r fasthttp.Request
	r.Header.SetMethod(req.Method)
	r.SetRequestURI(req.URI)
	for k, vs := range req.Header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	r.SetBody(req.Body)
	remote, err := net.ResolveTCPAddr("tcp", req.Remote)
	if err != nil {
		remote = &net.TCPAddr{IP: net.IPv4zero}
	}
	var fc fasthttp.RequestCtx
	fc.Init(&r, remote, nil)
	fc.SetUserValue(localForwarded, true)
	h(&fc)
	resp := &cluster.HTTPResponse{Status: fc.Response.StatusCode(), Header: http.Header{}}
	fc.Response.Header.VisitAll(func(k, v []byte) {
		resp.Header.Add(string(k), string(v))
	})
	resp.Body = append([]byte(nil), fc.Response.Body()...)
	return resp
}

// forwarded reports whether another replica forwarded this request here.
func forwarded(c *fiber.Ctx) bool { return c.Locals(localForwarded) != nil }

// toOwner is the middleware of [Route.Session] routes: with clustering on,
// a request for an instance another replica holds is sent to that replica
// and answered with its status, headers and body (same envelope, same trace
// id: the owner continues this request's traceparent). In a failover gap
// the answer is 503 disconnected with Retry-After, as forwarded publishing.
// Nobody holding the lease: it runs here (this replica takes it).
func (s *Server) toOwner(r Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		f := s.forwarder
		name := c.Params("instance")
		if f == nil || name == "" {
			return c.Next()
		}
		ctx := c.UserContext()
		owner, err := f.Locate(ctx, name)
		if err != nil {
			return err
		}
		if owner == "" {
			return c.Next()
		}
		if forwarded(c) {
			// The lease moved while the request travelled: never a second hop.
			return f.NotHere(name)
		}
		if len(c.Body()) > f.MaxForwardBody() {
			return newError(fiber.StatusRequestEntityTooLarge, "Request body too large to forward to the instance's replica (at most "+strconv.Itoa(f.MaxForwardBody())+" bytes)")
		}
		req := &cluster.HTTPRequest{Method: c.Method(), URI: string(c.Request().RequestURI()), Remote: c.Context().RemoteAddr().String(),
			Header: http.Header{}, Body: c.Body()}
		c.Request().Header.VisitAll(func(k, v []byte) {
			req.Header.Add(string(k), string(v))
		})
		// This request's span, so the owner's trace id is the caller's.
		tracing.Inject(ctx, headerCarrier(req.Header))
		resp, err := f.ForwardHTTP(ctx, owner, req)
		if err != nil {
			return err
		}
		for k, vs := range resp.Header {
			switch http.CanonicalHeaderKey(k) {
			case "Traceparent", "Tracestate", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset":
				// This replica's: the rate limit was counted here, and the
				// trace id is the same.
				continue
			}
			c.Response().Header.Del(k)
			for _, v := range vs {
				c.Response().Header.Add(k, v)
			}
		}
		c.Status(resp.Status)
		c.Response().SetBodyRaw(resp.Body)
		if r.afterForward != nil && resp.Status < 300 {
			r.afterForward(c)
		}
		return nil
	}
}

// headerCarrier is an http.Header as a propagation carrier.
type headerCarrier http.Header

func (h headerCarrier) Get(key string) string { return http.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { http.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}
