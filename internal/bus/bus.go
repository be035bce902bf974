package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/backoff"
	"github.com/statusflow/statusflow/schemas"
)

// ErrNotStarted is returned by methods that need a connection before
// [Bus.Start] or after [Bus.Stop].
var ErrNotStarted = errors.New("nats: bus not started")

// Bus is statusflow's NATS side: the embedded server (or a connection to an
// external one), the streams, the trigger consumer, the request door, the
// event publisher and the async enqueuer.
type Bus struct {
	cfg      Config
	subjects Subjects
	exec     Executor
	auth     Authenticator
	log      *slog.Logger

	// lifecycle serializes Start and Stop; only they write the fields
	// below, each write under mu, which readers (PublishEvent, Enqueue,
	// Ready) take briefly. Stop never holds mu while it waits for running
	// triggers (they publish events).
	lifecycle sync.Mutex
	mu        sync.Mutex
	started   bool
	ns        *server.Server
	nc        *nats.Conn
	// eventsPublished counts PublishEvent calls, to pick the acknowledged ones.
	eventsPublished atomic.Uint64
	js              jetstream.JetStream
	consume         jetstream.ConsumeContext
	reqSub          *nats.Subscription
	workers         sync.WaitGroup
	sem             chan struct{}
	runCtx          context.Context
	cancel          context.CancelFunc
	clientURL       string
}

// New returns a bus. exec may be nil: the bus then publishes events and
// enqueues, but consumes no triggers. authn checks trigger tokens (required
// with exec). Nothing connects until [Bus.Start].
func New(cfg Config, exec Executor, authn Authenticator, log *slog.Logger) (*Bus, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if exec != nil && authn == nil {
		return nil, errors.New("bus: an Authenticator is required to consume triggers")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Bus{cfg: cfg, subjects: Subjects{Prefix: cfg.Prefix}, exec: exec, auth: authn, log: log.With("component", "nats")}, nil
}

// Subjects returns the bus's subject names.
func (b *Bus) Subjects() Subjects { return b.subjects }

// ClientURL is the URL the bus connected to (the embedded server's when
// embedded); "" before Start.
func (b *Bus) ClientURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clientURL
}

// Conn returns the NATS connection (nil before Start).
func (b *Bus) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nc
}

// Start starts the embedded server when [Config.URL] is empty, connects,
// creates or updates the streams and the trigger consumer, and starts
// consuming triggers and requests. On error everything started is stopped.
func (b *Bus) Start(ctx context.Context) (err error) {
	b.lifecycle.Lock()
	defer b.lifecycle.Unlock()
	if b.started {
		return errors.New("bus: already started")
	}
	defer func() {
		if err != nil {
			b.stopLocked(context.Background())
		}
	}()
	url := b.cfg.URL
	internalPassword := randomSecret()
	if url == "" {
		ns, err := startEmbedded(b.cfg, internalPassword, b.log)
		if err != nil {
			return err
		}
		b.set(func() { b.ns = ns })
		url = ns.ClientURL()
	}
	b.set(func() { b.clientURL = url })
	opts := []nats.Option{
		nats.Name("statusflow"),
		nats.Timeout(b.cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(32 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("nats disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ClosedHandler(func(*nats.Conn) { b.log.Debug("nats connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	if b.ns != nil {
		// statusflow's own connection to the embedded server is in-process
		// (a pipe, not a loopback socket): every event and trigger would
		// otherwise cost a system call on each side. Other clients (the nats
		// CLI, workers) still use the TCP port.
		opts = append(opts, nats.InProcessServer(b.ns), nats.UserInfo(internalUser, internalPassword),
			nats.CustomInboxPrefix(internalInboxPrefix))
	} else {
		auth, err := urlAuthOptions(b.cfg)
		if err != nil {
			return err
		}
		opts = append(opts, auth...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("STATUSFLOW_NATS_URL %s: connect: %w", redact(url), err)
	}
	b.set(func() { b.nc = nc })
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			b.log.Warn("publish event to nats", "subject", m.Subject, "err", err)
		}))
	if err != nil {
		return err
	}
	b.set(func() { b.js = js })
	cons, err := b.declareRetrying(ctx)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	runCtx, runCancel := context.WithCancel(context.WithoutCancel(ctx))
	b.set(func() { b.runCtx, b.cancel = runCtx, runCancel })
	if b.exec != nil {
		if err := b.startConsumer(dctx, cons); err != nil {
			return err
		}
		sub, err := b.nc.QueueSubscribe(b.cfg.Prefix+".request.>", "statusflow-request", b.handleRequest)
		if err != nil {
			return fmt.Errorf("nats: subscribe to requests: %w", err)
		}
		b.set(func() { b.reqSub = sub })
		if err := b.nc.FlushTimeout(b.cfg.ConnectTimeout); err != nil {
			return fmt.Errorf("nats: subscribe to requests: %w", err)
		}
	}
	b.set(func() { b.started = true })
	b.log.Info("nats ready", "url", redact(url), "embedded", b.ns != nil, "prefix", b.cfg.Prefix, "consuming", b.exec != nil)
	return nil
}

// declareAttempts bounds how often Start tries to declare the streams on an
// external NATS before giving up (about a minute with the 10 s default
// ConnectTimeout and the pauses between tries).
const declareAttempts = 5

// declareRetrying declares the streams and the trigger consumer, trying again
// while an external JetStream cluster is still forming. Replicas and NATS
// nodes started together (the compose profile "cluster") routinely ask
// before the nodes have elected a meta leader, and creating a stream with
// three copies on a loaded machine can take longer than one ConnectTimeout:
// failing the start then only makes the orchestrator restart us into the
// same race. The embedded server is ready when it answers, so it gets one try.
func (b *Bus) declareRetrying(ctx context.Context) (jetstream.Consumer, error) {
	attempts := declareAttempts
	if b.ns != nil {
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
		cons, err := declare(dctx, b.js, b.cfg)
		cancel()
		if err == nil || attempt >= attempts || ctx.Err() != nil {
			return cons, err
		}
		wait := backoff.Exponential(time.Second, 8*time.Second, attempt, rand.Float64())
		b.log.Warn("nats: JetStream not ready yet; declaring the streams again", "attempt", attempt, "of", attempts, "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func (b *Bus) startConsumer(ctx context.Context, cons jetstream.Consumer) error {
	info, err := b.js.Stream(ctx, b.subjects.TriggersStream())
	if err != nil {
		return fmt.Errorf("nats: triggers stream: %w", err)
	}
	v, err := schemas.New()
	if err != nil {
		return err
	}
	th := &triggerHandler{subjects: b.subjects, exec: b.exec, auth: b.auth, validator: v,
		signKey: signKey(b.auth.AccountHash()), streamID: strconv.FormatInt(info.CachedInfo().Created.UnixNano(), 36)}
	h := Chain(th.handle,
		Trace(b.log),
		Reply(b.nc, b.log),
		DeadLetter(b.js, func(subject string) string {
			node, inst, ok := b.subjects.ParseTrigger("trigger", subject)
			if !ok {
				return b.subjects.DLQ("_invalid", "_invalid")
			}
			return b.subjects.DLQ(node, inst)
		}, b.cfg.MaxDeliver),
		Timeout(b.cfg.HandlerTimeout),
		Recover,
	)
	r := &runner{handler: h, backoff: Backoff(b.cfg.RetryBase, b.cfg.RetryMax), inProgress: b.cfg.AckWait / 3, log: b.log}
	b.sem = make(chan struct{}, b.cfg.Concurrency)
	runCtx := b.runCtx
	b.consume, err = cons.Consume(func(m jetstream.Msg) {
		b.sem <- struct{}{}
		b.workers.Add(1)
		go func() {
			defer func() { <-b.sem; b.workers.Done() }()
			r.run(runCtx, m)
		}()
	},
		jetstream.PullMaxMessages(b.cfg.Concurrency),
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// Missed heartbeats come with every reconnect; the consumer
			// recovers by itself. Anything else (consumer deleted) is worth a look.
			if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrNoResponders) {
				b.log.Debug("trigger consumer", "err", err)
			} else {
				b.log.Warn("trigger consumer", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("nats: consume triggers: %w", err)
	}
	return nil
}

// Stop stops consuming, waits for running triggers (until ctx ends, then
// cancels them; they are redelivered), flushes pending event publishes,
// closes the connection and shuts the embedded server down. A second Stop
// is harmless.
func (b *Bus) Stop(ctx context.Context) error {
	b.lifecycle.Lock()
	defer b.lifecycle.Unlock()
	return b.stopLocked(ctx)
}

// set runs f under mu: Start and Stop write fields through it.
func (b *Bus) set(f func()) {
	b.mu.Lock()
	f()
	b.mu.Unlock()
}

func (b *Bus) stopLocked(ctx context.Context) error {
	var errs []error
	if b.reqSub != nil {
		errs = append(errs, b.reqSub.Unsubscribe())
		b.set(func() { b.reqSub = nil })
	}
	if b.consume != nil {
		b.consume.Stop()
		select {
		case <-b.consume.Closed():
		case <-ctx.Done():
		}
		b.set(func() { b.consume = nil })
	}
	done := make(chan struct{})
	go func() { b.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if b.cancel != nil {
			b.cancel()
		}
		<-done
	}
	if b.cancel != nil {
		b.cancel()
	}
	if b.js != nil {
		select {
		case <-b.js.PublishAsyncComplete():
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		b.set(func() { b.js = nil })
	}
	if b.nc != nil {
		b.nc.FlushTimeout(2 * time.Second) // events published without an acknowledgement
		b.nc.Close()
		b.set(func() { b.nc = nil })
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
		b.set(func() { b.ns = nil })
	}
	b.set(func() { b.started = false })
	return errors.Join(errs...)
}

// Ready reports whether the connection is up and JetStream answers.
func (b *Bus) Ready(ctx context.Context) error {
	b.mu.Lock()
	nc, js := b.nc, b.js
	b.mu.Unlock()
	if nc == nil || js == nil {
		return ErrNotStarted
	}
	if !nc.IsConnected() {
		return fmt.Errorf("nats: not connected (%s)", nc.Status())
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		// Also what a server whose store hit a full disk answers: nats-server
		// turns JetStream off when it cannot write.
		return fmt.Errorf("nats: jetstream: %w", err)
	}
	if max := info.Limits.MaxStore; max > 0 && info.Store >= uint64(max) {
		return fmt.Errorf("nats: jetstream cannot write: its storage is full (%d of %d bytes)", info.Store, max)
	}
	return nil
}

func (b *Bus) jetStream() (jetstream.JetStream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.js == nil {
		return nil, ErrNotStarted
	}
	return b.js, nil
}
