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
//
// The database is reached through one small interface per handler group,
// declared beside its handlers (InstanceStore, StatusStore, SandboxStore,
// EventStore); *store.Store is each of them, and internal/app passes it.
type Deps struct {
	// Instances reads the instance registry (the instance routes; the
	// other groups check the instance in their path exists).
	Instances InstanceStore
	// Statuses reads published statuses and their views (status lookup,
	// views, schedules, the sandbox's list).
	Statuses StatusStore
	// Sandbox reads what sandbox statuses would have sent and keeps their
	// simulated audiences.
	Sandbox SandboxStore
	// Events reads the event log.
	Events EventStore
	// Deliveries, when set, gives the event log's stories their webhook
	// deliveries (*webhooks.Service is one); without it they have none.
	Deliveries EventDeliveries
	Manager    *whatsapp.Manager
	Service    *status.Service
	Validator  *schemas.Validator
	Log        *slog.Logger
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
	// SandboxMedia, when set, serves the files sandbox statuses would have
	// uploaded, and loses an instance's files with the instance.
	SandboxMedia *whatsapp.SandboxMedia
	// Webhooks, when set, is told that deleting an instance deletes its
	// webhooks too (*webhooks.Service keeps them in memory).
	Webhooks WebhookChanges
}

// WebhookChanges is told of changes to the webhooks made outside the
// webhooks package; *webhooks.Service is one.
type WebhookChanges interface {
	// ChangingWebhooks is called before the change; done after it has
	// committed or failed.
	ChangingWebhooks() (done func())
}

// Enqueuer queues a node execution to run asynchronously and durably; the
// outcome follows as an event.
type Enqueuer interface {
	Enqueue(ctx context.Context, nodeID string, req nodes.ExecuteRequest) error
}

// Route describes one endpoint. The route table is the contract: it feeds
// /openapi.json (and the clients generated from it), and the contract test
// (server/contract_test.go) sends valid and invalid requests to every route
// and fails on any answer whose status code, content type or body the entry
// does not declare. So a new route names every answer it can give:
//
//	s.Handle(Route{Method: "POST", Path: "/api/thing/:instance", Auth: AuthInstance, Tag: "things",
//		Summary: "Create a thing",
//		Request: schemas.ThingInput,             // request body, a schema in schemas/
//		Responses: Responses{
//			201: schemas.ThingReply,             // the WHOLE body of that answer (envelope included)
//			409: ErrorBody,                      // an error this route answers beyond the defaults
//		}}, h.create)
//
// Every 2xx is listed with its own schema in schemas/ (one schema per
// payload, describing the whole body; see schemas/instance.create.reply.json),
// or, for an answer {success, message, data}, as DataOf(the data's schema).
// Error answers use the error envelope
// (schemas/error.json); these are added to every route and need not be
// listed: 400 (NUL or invalid UTF-8 anywhere, bad input), 413 (body too
// large), 415 (compressed body), 431 (headers too large), 429 (rate limit),
// 500; 507 on command routes (disk full); 401 with a token requirement and
// 403 unless AuthAccount; 404 with path parameters.
// List anything else (409, 503, a 400 on a route without input, …).
// ContentType is set for 2xx answers that are not application/json
// (/metrics is text/plain).
type Route struct {
	Method  string
	Path    string // Fiber syntax, e.g. /api/message/status/:instance
	Auth    Auth
	Summary string
	Tag     string
	// Request names the request body's schema in schemas/ ("" when none).
	Request string
	// Responses maps each HTTP status the route answers (beyond the
	// defaults above) to the schema of that answer's body.
	Responses Responses
	// ContentType of the 2xx answers; "" means application/json.
	ContentType string
	// RequestTypes are the media types of a body that is not a JSON schema
	// (uploads): multipart/form-data gets a `file` part, others are raw bytes.
	RequestTypes []string
	// BodyLimit is the largest body the route reads, in bytes; larger ones
	// get 413 before any other work. 0 means the server's [Config.BodyLimit].
	BodyLimit int
	// Session marks a route that needs the instance's live session (or
	// files only its replica has): with clustering on, a request for an
	// instance another replica holds is forwarded to that replica and
	// answered with its answer ([Server.SetForwarder]). The path has an
	// :instance parameter.
	Session bool

	// afterForward runs on this replica after a forwarded request
	// succeeded (deleting an instance forgets its token here too).
	afterForward func(c *fiber.Ctx)
}

// Responses maps an HTTP status to the schema (in schemas/) of the answer's body.
type Responses map[int]string

// ErrorBody is the error envelope, for error statuses in [Responses].
const ErrorBody = schemas.Error

// dataPrefix marks a [DataOf] entry in [Responses].
const dataPrefix = "data:"

// DataOf names, in [Responses], the answer {success, message, data} whose
// data is the named schema (the shape [OK] writes with fiber.Map{"data": …}).
func DataOf(schema string) string { return dataPrefix + schema }

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
	cluster   ClusterView // nil: clustering off
	// forwarder sends Session routes to their instance's replica (nil:
	// clustering off).
	forwarder SessionForwarder
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
	if r.Session {
		hs = append(hs, s.toOwner(r))
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
	s.Handle(Route{Method: "POST", Path: "/api/instance/new", Auth: AuthAccount, Tag: "instances", Summary: "Create an instance; its TokenInstance is in this answer only", Request: schemas.InstanceCreate,
		Responses: Responses{201: schemas.InstanceCreateReply, 409: ErrorBody}, BodyLimit: smallBody},
		rateLimit(s.creations, "create:", nil), s.createInstance)
	s.Handle(Route{Method: "GET", Path: "/api/instance/list", Auth: AuthAny, Tag: "instances", Summary: "List instances", Responses: Responses{200: schemas.InstanceListReply}}, s.listInstances)
	s.Handle(Route{Method: "GET", Path: "/api/instance/connect/:instance", Session: true, Auth: AuthInstance, Tag: "instances", Summary: "Link a device: QR code or pairing code",
		Responses: Responses{200: schemas.InstanceConnectReply, 503: ErrorBody}}, s.connectInstance)
	s.Handle(Route{Method: "POST", Path: "/api/instance/reconnect/:instance", Session: true, Auth: AuthInstance, Tag: "instances", Summary: "Resume a stored session",
		Responses: Responses{200: schemas.InstanceStateReply, 503: ErrorBody}}, s.reconnectInstance)
	s.Handle(Route{Method: "DELETE", Path: "/api/instance/logout/:instance", Session: true, Auth: AuthInstance, Tag: "instances", Summary: "Unlink the device, keep the instance",
		Responses: Responses{200: schemas.InstanceStateReply}}, s.logoutInstance)
	s.Handle(Route{Method: "DELETE", Path: "/api/instance/delete/:instance", Session: true, afterForward: s.forgetInstance, Auth: AuthAccount, Tag: "instances", Summary: "Remove an instance and its session",
		Responses: Responses{200: schemas.InstanceDeleteReply}}, s.deleteInstance)
	s.Handle(Route{Method: "GET", Path: "/api/instance/audience/:instance", Session: true, Auth: AuthInstance, Tag: "instances",
		Summary:   "Who a status would reach: privacy mode, recipient count, a page of recipients (?limit=&offset=)",
		Responses: Responses{200: schemas.AudienceReply, 503: ErrorBody}}, s.getAudience)
	s.Handle(Route{Method: "PUT", Path: "/api/instance/audience/:instance", Session: true, Auth: AuthInstance, Tag: "instances",
		Summary: "Sandbox: set the simulated Status privacy and contacts", Request: schemas.AudienceInput,
		Responses: Responses{200: schemas.AudienceReply}}, s.setAudience)

	s.Handle(Route{Method: "POST", Path: "/api/message/status/:instance?", Auth: AuthInstance, Tag: "status", Summary: "Publish a status", Request: schemas.PublishInput,
		Responses: Responses{200: schemas.PublishReply, 202: schemas.PublishAcceptedReply, 409: ErrorBody, 503: ErrorBody}}, s.sendStatus)
	s.Handle(Route{Method: "DELETE", Path: "/api/chat/delete/:instance?", Auth: AuthInstance, Tag: "status", Summary: "Delete a status", Request: schemas.DeleteInput,
		Responses: Responses{200: schemas.DeleteReply, 202: schemas.PublishAcceptedReply, 409: ErrorBody, 503: ErrorBody}, BodyLimit: smallBody}, s.deleteStatus)
	s.Handle(Route{Method: "GET", Path: "/api/sandbox/:instance/statuses", Auth: AuthInstance, Tag: "sandbox", Summary: "What a sandbox instance would have sent, newest first",
		Responses: Responses{200: schemas.SandboxStatusesReply}}, s.sandboxStatuses)
	s.Handle(Route{Method: "GET", Path: "/api/sandbox/:instance/media/:messageId", Session: true, Auth: AuthInstance, Tag: "sandbox",
		Summary:   "The media file a sandbox status would have uploaded (JPEG, MP4 or OGG/Opus), with its Content-Type",
		Responses: Responses{200: "", 400: ErrorBody}, ContentType: "*/*"}, s.sandboxMedia)

	s.Handle(Route{Method: "GET", Path: "/schemas/:name", Auth: AuthNone, Tag: "meta", Summary: "A JSON Schema by file name",
		Responses: Responses{200: schemas.JSONSchema}, ContentType: "application/schema+json"}, s.schema)
	s.Handle(Route{Method: "GET", Path: "/healthz", Auth: AuthNone, Tag: "meta", Summary: "Liveness", Responses: Responses{200: schemas.HealthReply}}, s.healthz)
	s.Handle(Route{Method: "GET", Path: "/readyz", Auth: AuthNone, Tag: "meta", Summary: "Readiness, with what is wrong in words",
		Responses: Responses{200: schemas.ReadyReply, 503: schemas.ReadyReply}}, s.readyz)

	s.registerSchedules()
	s.registerStatusFind()
	s.registerNodes()
	s.registerMedia()
	s.registerStream()
	s.Handle(Route{Method: "GET", Path: "/api/cluster", Auth: AuthAccount, Tag: "meta",
		Summary:   "Cluster: the live replicas (id, address, started, instances owned, last heartbeat) and each instance's owner",
		Responses: Responses{200: DataOf(schemas.ClusterOutput)}}, s.getCluster)
	s.Handle(Route{Method: "GET", Path: "/api/whoami", Auth: AuthAny, Tag: "meta", Summary: "What the caller's token may see: the account, or one instance", Responses: Responses{200: DataOf(schemas.WhoamiOutput)}}, s.whoami)
	s.registerConsole()
	s.registerOpenAPI()
	s.registerAsyncAPI()
}
