// Package server is statusflow's HTTP front door: a Fiber app with the
// routes of API.md, token auth, per-token rate limits, trace context and the
// success/error envelopes. Handlers decode and validate with schemas/, build
// a status.Command and map the core's errors with one table (envelope.go).
package server

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
)

// Config is the server's policy.
type Config struct {
	// RateLimit is requests per minute per token. Defaults to 100.
	RateLimit int
	// CreateRateLimit is instance creations per minute per token. Defaults to 20.
	CreateRateLimit int
	// BodyLimit is the largest request body in bytes. Defaults to 1 MiB:
	// media travel by URL, never in the body. A route may set a smaller one
	// ([Route.BodyLimit]).
	BodyLimit int
	// ProbeRateLimit is unauthenticated /healthz, /readyz and /metrics
	// requests per minute per client address, counted apart from every
	// other request of that address. Defaults to 600.
	ProbeRateLimit int
	// AuthFailureLimit is failed token attempts per minute per client
	// address; past it, tokens this process cannot resolve without the
	// database get 429 without a lookup. Defaults to 20.
	AuthFailureLimit int
	// NewLimiter builds the request limiters (name is "requests",
	// "creations", "probes" or "auth-failures"). Defaults to
	// [NewMemoryLimiter]; a store shared by replicas plugs in here.
	NewLimiter func(name string, perMinute int) Limiter
}

// WithDefaults returns a copy with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.RateLimit <= 0 {
		c.RateLimit = 100
	}
	if c.CreateRateLimit <= 0 {
		c.CreateRateLimit = 20
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = 1 << 20
	}
	if c.ProbeRateLimit <= 0 {
		c.ProbeRateLimit = 600
	}
	if c.AuthFailureLimit <= 0 {
		c.AuthFailureLimit = 20
	}
	if c.NewLimiter == nil {
		c.NewLimiter = func(_ string, perMinute int) Limiter { return NewMemoryLimiter(perMinute) }
	}
	return c
}

// Deps are the parts the handlers call.
type Deps struct {
	Store     *store.Store
	Manager   *whatsapp.Manager
	Service   *status.Service
	Validator *schemas.Validator
	Log       *slog.Logger
	// Auth resolves tokens.
	Auth *auth.Authenticator
	// Enqueuer, when set, takes `Prefer: respond-async` commands (the NATS
	// trigger stream); without it the header is ignored.
	Enqueuer Enqueuer
	// Checks are readiness checks by name (database, nats, ffmpeg, …); nil
	// error means ready.
	Checks map[string]func(ctx context.Context) error
	// Catalog, when set, serves the node routes (/api/nodes…, API.md §7).
	Catalog *nodes.Catalog
	// Uploads, when set, serves media by upload (POST /api/media/:instance).
	Uploads *media.Uploads
	// Hub, when set, serves the live event streams (Server-Sent Events).
	Hub *events.Hub
}

// Enqueuer queues a node execution to run asynchronously and durably; the
// outcome follows as an event.
type Enqueuer interface {
	Enqueue(ctx context.Context, nodeID string, req nodes.ExecuteRequest) error
}

// Route describes one endpoint; the route table feeds the OpenAPI document.
type Route struct {
	Method  string
	Path    string // Fiber syntax, e.g. /api/message/status/:instance
	Auth    Auth
	Summary string
	Tag     string
	// Request and Response name schemas in schemas/ ("" when none).
	Request  string
	Response string
	// RequestTypes are the media types of a body that is not a JSON schema
	// (uploads): multipart/form-data gets a `file` part, others are raw bytes.
	RequestTypes []string
	// BodyLimit is the largest body the route reads, in bytes; larger ones
	// get 413 before any other work. 0 means the server's [Config.BodyLimit].
	BodyLimit int
}

// Server is the HTTP front door.
type Server struct {
	app       *fiber.App
	deps      Deps
	cfg       Config
	log       *slog.Logger
	auth      *auth.Authenticator
	limiter   Limiter
	creations Limiter
	probes    Limiter
	failures  Limiter // failed token attempts per client address
	routes    []Route
	// closing is closed by Shutdown: it ends the live streams, which would
	// otherwise hold Shutdown forever.
	closing   chan struct{}
	closeOnce sync.Once
	qr        qrCodes
}

// New builds the app and registers the core routes. Other front doors
// (nodes, webhooks, events) add theirs with [Server.Handle].
func New(deps Deps, cfg Config) *Server {
	cfg = cfg.WithDefaults()
	s := &Server{deps: deps, cfg: cfg, log: deps.Log, auth: deps.Auth,
		limiter: cfg.NewLimiter("requests", cfg.RateLimit), creations: cfg.NewLimiter("creations", cfg.CreateRateLimit),
		probes: cfg.NewLimiter("probes", cfg.ProbeRateLimit), failures: cfg.NewLimiter("auth-failures", cfg.AuthFailureLimit),
		closing: make(chan struct{})}
	s.app = fiber.New(fiber.Config{
		AppName:               "statusflow",
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           60 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.app.Use(traceMiddleware)
	s.app.Use(s.observe)
	s.app.Use(recover.New())
	s.app.Use(hygiene)
	s.app.Use(rateLimit(s.limiter, "", s.probes))
	s.registerCore()
	s.registerOps()
	return s
}

// App returns the Fiber app (tests use App().Test).
func (s *Server) App() *fiber.App { return s.app }

// Shutdown stops accepting and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	return s.app.ShutdownWithContext(ctx)
}

// Handle registers a route with its auth middleware and records it for the
// OpenAPI document.
func (s *Server) Handle(r Route, handlers ...fiber.Handler) {
	s.routes = append(s.routes, r)
	hs := []fiber.Handler{s.requireAuth(r.Auth)}
	if r.BodyLimit > 0 && r.BodyLimit < s.cfg.BodyLimit {
		hs = append(hs, bodyLimit(r.BodyLimit))
	}
	hs = append(hs, handlers...)
	s.app.Add(r.Method, r.Path, hs...)
}

// Routes returns the route table, sorted by path then method.
func (s *Server) Routes() []Route {
	out := append([]Route(nil), s.routes...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Validator returns the schema validator, for front doors registered from other packages.
func (s *Server) Validator() *schemas.Validator { return s.deps.Validator }

// OK answers 200 with the success envelope: success, message and fields.
func OK(c *fiber.Ctx, message string, fields fiber.Map) error {
	return reply(c, fiber.StatusOK, message, fields)
}

func reply(c *fiber.Ctx, code int, message string, fields fiber.Map) error {
	body := fiber.Map{"success": true, "message": message}
	for k, v := range fields {
		body[k] = v
	}
	return c.Status(code).JSON(body)
}

func (s *Server) registerCore() {
	s.Handle(Route{Method: "POST", Path: "/api/instance/new", Auth: AuthAccount, Tag: "instances", Summary: "Create an instance", Request: schemas.InstanceCreate, BodyLimit: smallBody},
		rateLimit(s.creations, "create:", nil), s.createInstance)
	s.Handle(Route{Method: "GET", Path: "/api/instance/list", Auth: AuthAny, Tag: "instances", Summary: "List instances"}, s.listInstances)
	s.Handle(Route{Method: "GET", Path: "/api/instance/connect/:instance", Auth: AuthInstance, Tag: "instances", Summary: "Link a device: QR code or pairing code"}, s.connectInstance)
	s.Handle(Route{Method: "POST", Path: "/api/instance/reconnect/:instance", Auth: AuthInstance, Tag: "instances", Summary: "Resume a stored session"}, s.reconnectInstance)
	s.Handle(Route{Method: "DELETE", Path: "/api/instance/logout/:instance", Auth: AuthInstance, Tag: "instances", Summary: "Unlink the device, keep the instance"}, s.logoutInstance)
	s.Handle(Route{Method: "DELETE", Path: "/api/instance/delete/:instance", Auth: AuthAccount, Tag: "instances", Summary: "Remove an instance and its session"}, s.deleteInstance)

	s.Handle(Route{Method: "POST", Path: "/api/message/status/:instance?", Auth: AuthInstance, Tag: "status", Summary: "Publish a status", Request: schemas.PublishInput, Response: schemas.PublishOutput}, s.sendStatus)
	s.Handle(Route{Method: "DELETE", Path: "/api/chat/delete/:instance?", Auth: AuthInstance, Tag: "status", Summary: "Delete a status", Request: schemas.DeleteInput, Response: schemas.DeleteOutput, BodyLimit: smallBody}, s.deleteStatus)
	s.Handle(Route{Method: "GET", Path: "/api/sandbox/:instance/statuses", Auth: AuthInstance, Tag: "sandbox", Summary: "What a sandbox instance would have sent, newest first"}, s.sandboxStatuses)

	s.Handle(Route{Method: "GET", Path: "/schemas/:name", Auth: AuthNone, Tag: "meta", Summary: "A JSON Schema by file name"}, s.schema)
	s.Handle(Route{Method: "GET", Path: "/healthz", Auth: AuthNone, Tag: "meta", Summary: "Liveness"}, s.healthz)
	s.Handle(Route{Method: "GET", Path: "/readyz", Auth: AuthNone, Tag: "meta", Summary: "Readiness, with what is wrong in words"}, s.readyz)

	s.registerSchedules()
	s.registerStatusFind()
	s.registerNodes()
	s.registerMedia()
	s.registerStream()
	s.Handle(Route{Method: "GET", Path: "/api/whoami", Auth: AuthAny, Tag: "meta", Summary: "What the caller's token may see: the account, or one instance", Response: schemas.WhoamiOutput}, s.whoami)
	s.registerConsole()
	s.registerOpenAPI()
}
