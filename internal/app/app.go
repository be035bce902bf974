// Package app wires statusflow together: config → store → engines → core →
// front doors. main.go calls it; tests start whole servers with it.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/cluster"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/logging"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
	"github.com/statusflow/statusflow/server"
	"github.com/statusflow/statusflow/webhooks"
)

// App is a running statusflow.
type App struct {
	hub      *events.Hub
	Config   *config.Config
	Log      *slog.Logger
	Store    *store.Store
	Manager  *whatsapp.Manager
	Service  *status.Service
	Recorder *events.Recorder
	Server   *server.Server
	// Catalog is the node catalog (GET /api/nodes, execute).
	Catalog *nodes.Catalog
	// Webhooks manages webhooks and inbound hooks and writes the outbox;
	// WebhookWorker sends the deliveries.
	Webhooks      *webhooks.Service
	WebhookWorker *webhooks.Worker
	// Media is the media pipeline (fetch, validate, FFmpeg).
	Media *media.Pipeline
	// Scheduler runs scheduled publications and revokes.
	Scheduler *status.Scheduler
	// Uploads keeps files uploaded with POST /api/media/:instance.
	Uploads *media.Uploads
	// Bus is the NATS side: trigger consumer, events out, async enqueue.
	Bus *bus.Bus
	// Leases is instance ownership when clustering is on (nil otherwise).
	Leases *cluster.Leases
	// Placement spreads instances over the replicas (clustering on).
	Placement *cluster.Placement
	// Forwarder sends commands to their instance's owner (clustering on).
	Forwarder *cluster.Forwarder
	// Limits are the rate-limit counters shared by replicas when clustering
	// is on (nil otherwise).
	Limits *cluster.Limits

	listener net.Listener
	stops    []func(ctx context.Context) error
}

// NewLogger returns the JSON logger (text on a terminal, or as configured),
// with trace ids and redaction: see [logging.New].
func NewLogger(format string, w io.Writer) *slog.Logger { return logging.New(format, w) }

// Option changes how New wires the app (tests).
type Option func(*options)

type options struct {
	engines []whatsapp.Engine
	wrap    func(whatsapp.Engine) whatsapp.Engine
}

// WithEngineWrapper wraps every engine once built (tests count sessions at
// the engine seam while keeping the built-in engine's wiring).
func WithEngineWrapper(wrap func(whatsapp.Engine) whatsapp.Engine) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithEngine replaces the built-in engine of the same name (tests put a
// scripted engine at the engine seam, e.g. one that rotates QR codes).
func WithEngine(e whatsapp.Engine) Option {
	return func(o *options) { o.engines = append(o.engines, e) }
}

// New builds every part from cfg. Nothing listens until Start.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (_ *App, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	a := &App{Config: cfg, Log: log}
	defer func() {
		if err != nil {
			a.Stop(context.Background())
		}
	}()
	if cfg.ClusterReplica != "" && usesDataDirExclusively(cfg) {
		return nil, errors.New("STATUSFLOW_CLUSTER_REPLICA needs STATUSFLOW_DATABASE_URL (PostgreSQL) and STATUSFLOW_NATS_URL: replicas share the database and a NATS cluster")
	}
	if usesDataDirExclusively(cfg) {
		release, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		a.stops = append(a.stops, func(context.Context) error { return release() })
	}
	a.Store, err = store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.stops = append(a.stops, func(context.Context) error { return a.Store.Close() })

	if cfg.OTLPEndpoint != "" {
		shutdown, err := tracing.Setup(ctx, tracing.Config{OTLPEndpoint: cfg.OTLPEndpoint})
		if err != nil {
			return nil, err
		}
		a.stops = append(a.stops, shutdown)
	}

	accountHash, err := auth.AccountTokenHash(ctx, a.Store, cfg.AccountToken, log)
	if err != nil {
		return nil, fmt.Errorf("account token: %w", err)
	}

	// One authenticator for every front door, so deleting an instance
	// forgets its token everywhere in this process.
	authn := auth.New(accountHash, a.Store)
	a.Recorder = events.NewRecorder(a.Store, log)
	wm, err := whatsapp.NewWhatsmeow(a.Store, log)
	if err != nil {
		return nil, fmt.Errorf("whatsmeow engine: %w", err)
	}
	if err := wm.SetVersionPolicy(whatsapp.VersionConfig{Pinned: cfg.WAVersion}); err != nil {
		return nil, err
	}
	a.stops = append(a.stops, func(context.Context) error { wm.Stop(); return nil })
	sandbox := whatsapp.NewSandbox(a.Store)
	// The sandbox keeps what it would have uploaded, for the console's preview.
	sandbox.Media = &whatsapp.SandboxMedia{Dir: filepath.Join(cfg.DataDir, "sandbox"), MaxBytes: cfg.MediaMaxBytes}
	engines := []whatsapp.Engine{sandbox, wm}
	for _, e := range o.engines {
		for i := range engines {
			if engines[i].Name() == e.Name() {
				engines[i] = e
			}
		}
	}
	if o.wrap != nil {
		for i := range engines {
			engines[i] = o.wrap(engines[i])
		}
	}
	a.Manager = whatsapp.NewManager(a.Store, log, engines...)
	a.stops = append(a.stops, a.Manager.Stop)

	validator, err := schemas.New()
	if err != nil {
		return nil, err
	}
	// Media: downloads and FFmpeg work in the data dir's tmp folder. A
	// missing FFmpeg is not fatal: /readyz says so and media statuses fail.
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("STATUSFLOW_DATA_DIR: %w", err)
	}
	// Uploads (POST /api/media/:instance) live in the data dir; opening the
	// store removes what a crash left.
	uploads, err := media.NewUploads(media.UploadConfig{Dir: filepath.Join(cfg.DataDir, "uploads"), MaxBytes: cfg.MediaMaxBytes})
	if err != nil {
		return nil, err
	}
	a.Uploads = uploads
	a.Media, err = media.New(media.Config{AllowPrivate: cfg.MediaAllowPrivate, MaxBytes: cfg.MediaMaxBytes, TempDir: tmp, Uploads: uploads,
		MaxProcesses: cfg.MediaProcesses, MaxProcessesPerInstance: cfg.MediaProcessesPerInstance, ProcessMemory: cfg.MediaProcessMemory}, log)
	if err != nil {
		return nil, err
	}
	a.stops = append(a.stops, func(context.Context) error { a.Media.Close(); return nil })
	if err := a.Media.Ready(); err != nil {
		log.Warn("media statuses are unavailable", "reason", err.Error())
	}
	a.Service = status.NewService(a.Manager, a.Store, a.Media, a.Recorder, status.NewIdempotent(a.Store, status.IdempotencyConfig{}), log)
	a.Manager.OnState = func(c whatsapp.StateChange) {
		metrics.InstanceState(c.Instance, string(c.State))
		if c.Reason == whatsapp.ReasonClientOutdated || c.Reason == whatsapp.ReasonSyncingContacts {
			metrics.StateReason(c.Reason)
		}
		a.Service.EmitInstanceState(context.Background(), c)
	}
	a.Manager.OnReceipt = func(r whatsapp.Receipt) { a.Service.RecordReceipt(context.Background(), r) }
	a.Scheduler = status.NewScheduler(a.Service, a.Store, status.SchedulerConfig{Grace: cfg.ScheduleGrace,
		PrepareAhead: cfg.SchedulePrepareAhead, Lease: cfg.ScheduleLease}, log)

	a.Catalog = nodes.Default(a.Service, validator)
	// NATS: triggers run through the catalog; every event is published;
	// Prefer: respond-async goes through the trigger stream.
	busCfg := bus.Config{URL: cfg.NATSURL, Listen: cfg.NATSListen, DataDir: cfg.DataDir, Prefix: cfg.NATSPrefix,
		ClientUser: cfg.NATSUser, ClientPassword: cfg.NATSPassword, ClientNKey: cfg.NATSNKey,
		CredsFile: cfg.NATSCreds, NKeySeedFile: cfg.NATSNKeySeed, Token: cfg.NATSToken, Replicas: cfg.NATSReplicas,
		Replica: cfg.ClusterReplica}
	if busCfg.URL == "" {
		if busCfg, err = bus.EmbeddedCredentials(ctx, a.Store, busCfg, log); err != nil {
			return nil, fmt.Errorf("nats credentials: %w", err)
		}
	}
	a.Bus, err = bus.New(busCfg, a.Catalog, authn, log)
	if err != nil {
		return nil, err
	}
	a.Recorder.AddPublisher(a.Bus)
	// The console's live streams: every committed event, in process, and
	// with clustering on the other replicas' too (followStreams).
	hub := events.NewHub()
	a.hub = hub
	a.Recorder.AddPublisher(hub)
	// Webhooks: outbox rows are written in each event's transaction; the
	// worker is woken after each commit.
	whCfg := webhooks.Config{AllowPrivate: cfg.WebhookAllowPrivate, MaxAttempts: cfg.WebhookMaxAttempts,
		RetryBase: cfg.WebhookRetryBase, RetryMax: cfg.WebhookRetryMax, Timeout: cfg.WebhookTimeout, Lease: cfg.WebhookLease,
		PollInterval: cfg.WebhookPollInterval, SecretGrace: cfg.WebhookSecretGrace}
	if a.WebhookWorker, err = webhooks.NewWorker(a.Store, log, whCfg); err != nil {
		return nil, err
	}
	if a.Webhooks, err = webhooks.NewService(a.Store, a.Catalog, a.WebhookWorker, log, whCfg); err != nil {
		return nil, err
	}
	a.Recorder.AddTxHook(a.Webhooks.TxHook)
	a.Recorder.OnCommit(a.WebhookWorker.Wake)
	srvCfg := server.Config{RateLimit: cfg.RateLimit}
	if cfg.ClusterReplica != "" {
		// One budget per token across replicas: the counters live in NATS
		// KV once the bus is up (startCluster), before HTTP listens.
		a.Limits = cluster.NewLimits(cluster.LimitsConfig{Replicas: cfg.NATSReplicas, Log: log})
		srvCfg.NewLimiter = func(name string, perMinute int) server.Limiter {
			return a.Limits.Limiter(name, perMinute, server.NewMemoryLimiter(perMinute))
		}
	}
	a.Server = server.New(server.Deps{
		Instances: a.Store, Statuses: a.Store, Sandbox: a.Store, Events: a.Store, Deliveries: a.Webhooks,
		Manager: a.Manager, Service: a.Service, Validator: validator, Log: log, Catalog: a.Catalog,
		Checks: map[string]func(context.Context) error{
			"database": a.Store.WriteProbe,
			"nats":     a.Bus.Ready,
			"ffmpeg":   func(context.Context) error { return a.Media.Ready() },
		},
		Auth:         authn,
		Enqueuer:     a.Bus,
		Uploads:      a.Uploads,
		Hub:          hub,
		SandboxMedia: sandbox.Media,
		Webhooks:     a.Webhooks,
	}, srvCfg)
	// QR codes go to the live streams only (never stored nor published).
	a.Manager.OnQR = a.Server.NotifyQR

	server.RegisterWebhooks(a.Server, a.Webhooks)
	return a, nil
}

// startCluster turns clustering on: instance leases in NATS KV gate which
// sessions this replica opens, renewed and reconciled every third of a
// lease's lifetime until Stop.
func (a *App) startCluster(ctx context.Context) error {
	if err := cluster.ValidReplicaID(a.Config.ClusterReplica); err != nil {
		return err
	}
	js, err := jetstream.New(a.Bus.Conn())
	if err != nil {
		return err
	}
	leases, err := cluster.New(ctx, js, cluster.Config{Replica: a.Config.ClusterReplica, TTL: a.Config.ClusterLeaseTTL,
		Replicas: a.Config.NATSReplicas})
	if err != nil {
		return err
	}
	if err := a.Limits.Open(ctx, js); err != nil {
		return err
	}
	a.Leases = leases
	// Uploads go to an object store every replica reads: the owner
	// publishes a file whichever replica took it.
	shared, err := cluster.OpenUploads(ctx, js, a.Config.NATSReplicas, a.Uploads.TTL())
	if err != nil {
		return err
	}
	a.Uploads.SetShared(shared)
	// instance.owner events: every ownership change of this replica.
	leases.SetOnChange(func(instance, change string) {
		a.Service.EmitInstanceOwner(context.Background(), instance, leases.Replica(), change)
	})
	a.Server.SetCluster(leases)
	a.followStreams()
	a.Manager.SetGate(leases.Gate())
	// Placement: new instances and a joining replica's share go to the
	// least-loaded replica, one move per tick (cluster.Placement's rule).
	a.Placement = cluster.NewPlacement(a.Bus.Conn(), leases, a.Manager, a.Config.NATSPrefix, a.Log)
	if err := a.Placement.Start(ctx); err != nil {
		return err
	}
	pctx, pcancel := context.WithCancel(context.Background())
	var placing sync.WaitGroup
	a.Manager.OnCreate = func(name string) {
		placing.Add(1)
		go func() { defer placing.Done(); a.Placement.Place(pctx, name) }()
	}
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		leases.Run(lctx, func() {
			taken, lost := a.Manager.Reconcile(lctx)
			metrics.ClusterOwnership(len(leases.HeldAll()), taken, lost)
			if err := leases.Heartbeat(lctx); err != nil && lctx.Err() == nil {
				a.Log.Warn("cluster: heartbeat", "err", err)
			}
			a.Placement.Tick(lctx)
		})
	}()
	// Sessions whose lease is about to lapse close within a tenth of the TTL,
	// well inside the lease's margin: no NATS or database round trip.
	fenceDone := make(chan struct{})
	go func() {
		defer close(fenceDone)
		t := time.NewTicker(leases.TTL() / 10)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if n := a.Manager.CloseLapsed(); n > 0 {
					a.Log.Warn("cluster: closed sessions whose lease is lapsing (NATS not answering renewals?)", "sessions", n)
				}
			}
		}
	}()
	a.stops = append(a.stops, func(ctx context.Context) error {
		pcancel()
		placing.Wait()
		a.Placement.Stop(ctx)
		cancel()
		<-done
		<-fenceDone
		// Close the sessions and release their leases while NATS is still
		// up, so the other replicas take over at once instead of after the TTL.
		err := a.Manager.Stop(ctx)
		if uerr := leases.Unregister(ctx); uerr != nil {
			a.Log.Warn("cluster: leave the replica list", "err", uerr)
		}
		return err
	})
	// Any replica answers: commands for instances owned elsewhere go to
	// their owner over NATS request-reply.
	a.Forwarder = cluster.NewForwarder(a.Bus.Conn(), leases, a.Service, cluster.ForwardConfig{Prefix: a.Config.NATSPrefix}, a.Log)
	// The routes that need the live session (connect, logout, audience, …)
	// go to the owner too, as whole HTTP requests.
	a.Forwarder.ServeHTTP(a.Server.SetForwarder(a.Forwarder))
	if err := a.Forwarder.Start(ctx); err != nil {
		return err
	}
	a.stops = append(a.stops, a.Forwarder.Stop)
	a.Service.SetRouter(a.Forwarder)
	a.Log.Info("clustering on", "replica", a.Config.ClusterReplica, "leaseTTL", leases.TTL().String())
	return nil
}

// advertised is a listen address as other hosts reach it: an unspecified
// host (":8080", "0.0.0.0:8080") becomes this host's name.
func advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}

// usesDataDirExclusively reports whether cfg keeps a database or NATS
// files in the data dir (the embedded defaults), which one process at a
// time may use.
func usesDataDirExclusively(cfg *config.Config) bool {
	pg := strings.HasPrefix(cfg.DatabaseURL, "postgres://") || strings.HasPrefix(cfg.DatabaseURL, "postgresql://")
	return !pg || cfg.NATSURL == ""
}

// Start opens the stored instances and starts serving HTTP on cfg.Addr.
func (a *App) Start(ctx context.Context) error {
	// The bus first, so the instance.state events of Manager.Start reach NATS.
	if err := a.Bus.Start(ctx); err != nil {
		return err
	}
	a.stops = append(a.stops, a.Bus.Stop)
	if a.Config.ClusterReplica != "" {
		if err := a.startCluster(ctx); err != nil {
			return err
		}
	}
	if err := a.Manager.Start(ctx); err != nil {
		return err
	}
	if err := a.WebhookWorker.Start(ctx); err != nil {
		return err
	}
	a.stops = append(a.stops, a.WebhookWorker.Stop)
	// After the instances opened: a schedule due during the downtime runs now.
	if err := a.Scheduler.Start(ctx); err != nil {
		return err
	}
	a.stops = append(a.stops, a.Scheduler.Stop)
	a.startJanitor()
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("STATUSFLOW_ADDR %s: %w", a.Config.Addr, err)
	}
	a.listener = ln
	go func() {
		if err := a.Server.App().Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			a.Log.Error("http server stopped", "err", err)
		}
	}()
	if a.Leases != nil {
		// GET /api/cluster shows where each replica listens.
		a.Leases.SetAddress(advertised(ln.Addr().String()))
		if err := a.Leases.Heartbeat(ctx); err != nil {
			a.Log.Warn("cluster: heartbeat", "err", err)
		}
	}
	a.Log.Info("statusflow listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the HTTP address actually listened on (useful with port 0).
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Stop shuts down in reverse order of start. A second Stop is harmless.
func (a *App) Stop(ctx context.Context) error {
	var errs []error
	if a.Server != nil && a.listener != nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		errs = append(errs, a.Server.Shutdown(sctx))
		cancel()
		// Shutdown only closes listeners the server has started serving; one
		// stopped right after Start may not be yet.
		if err := a.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		a.listener = nil
	}
	for i := len(a.stops) - 1; i >= 0; i-- {
		errs = append(errs, a.stops[i](ctx))
	}
	a.stops = nil
	return errors.Join(errs...)
}

// janitorInterval is how often expired idempotency keys are removed (they
// are also replaced lazily when a key is reused).
const janitorInterval = time.Hour

// startJanitor removes expired idempotency keys now and every janitorInterval
// until Stop.
func (a *App) startJanitor() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(janitorInterval)
		defer t.Stop()
		for {
			if n, err := a.Store.IdempotencyDeleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
				a.Log.Warn("remove expired idempotency keys", "err", err)
			} else if n > 0 {
				a.Log.Info("removed expired idempotency keys", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	a.stops = append(a.stops, func(context.Context) error { cancel(); <-done; return nil })
	a.startUploadSweeper()
}

// uploadSweepInterval is how often expired uploads are removed (they are
// also refused, and removed, when used after expiry).
const uploadSweepInterval = time.Minute

func (a *App) startUploadSweeper() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(uploadSweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n := a.Uploads.Sweep(); n > 0 {
					a.Log.Info("removed expired uploads", "files", n)
				}
			}
		}
	}()
	a.stops = append(a.stops, func(context.Context) error { cancel(); <-done; return nil })
}

// followStreams makes the console's live streams show every replica's
// events and QR codes when clustering is on. An instance's events are
// recorded by the replica that owns it, and its phone is linked there, while
// a stream (GET /api/events/stream) may be open on any replica behind a load
// balancer. Each replica's own events and QR codes reach its streams in
// process, as without clustering; the others' come from NATS: the events
// every replica publishes to <prefix>.events.> (the same CloudEvent JSON)
// and the QR codes an owner publishes to <prefix>.qr.<instance> (core NATS,
// never stored), skipping the ones this replica published (HeaderReplica).
// A replica subscribes only while one of its streams is open: with no
// console watching, following costs nothing.
func (a *App) followStreams() {
	nc, prefix, hub, self := a.Bus.Conn(), a.Config.NATSPrefix, a.hub, a.Config.ClusterReplica
	a.Server.SetQRPublisher(func(instance string, body []byte) {
		m := nats.NewMsg(prefix + ".qr." + instance)
		m.Data = body
		m.Header.Set(bus.HeaderReplica, self)
		if err := nc.PublishMsg(m); err != nil {
			a.Log.Warn("cluster: publish a QR code", "instance", instance, "err", err)
		}
	})
	relay := func(m *nats.Msg) {
		if m.Header.Get(bus.HeaderReplica) == self {
			return // in this replica's streams already
		}
		if inst, ok := strings.CutPrefix(m.Subject, prefix+".qr."); ok {
			hub.Send(inst, events.HubMessage{Type: "qr", Body: m.Data})
			return
		}
		var ce struct {
			Type     string `json:"type"`
			Instance string `json:"instance"`
		}
		if json.Unmarshal(m.Data, &ce) == nil && ce.Type != "" {
			hub.Send(ce.Instance, events.HubMessage{Type: ce.Type, Body: m.Data})
		}
	}
	var (
		mu   sync.Mutex
		subs []*nats.Subscription
	)
	hub.SetOnActive(func() {
		mu.Lock()
		defer mu.Unlock()
		switch active := hub.Active(); {
		case active && subs == nil:
			for _, subj := range []string{prefix + ".events.>", prefix + ".qr.>"} {
				sub, err := nc.Subscribe(subj, relay)
				if err != nil {
					a.Log.Warn("cluster: follow the other replicas' live streams", "subject", subj, "err", err)
					continue
				}
				subs = append(subs, sub)
			}
		case !active && subs != nil:
			for _, sub := range subs {
				sub.Unsubscribe()
			}
			subs = nil
		}
	})
}
