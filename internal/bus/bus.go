package bus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/nodes"
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
	if url == "" {
		ns, err := startEmbedded(b.cfg, b.log)
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
		opts = append(opts, nats.InProcessServer(b.ns))
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
	dctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	cons, err := declare(dctx, b.js, b.cfg)
	if err != nil {
		return err
	}
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
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats: jetstream: %w", err)
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

// PublishEvent implements [events.Publisher]: it publishes the CloudEvent to
// <prefix>.events.<instance>.<type>, which the EVENTS stream captures, with
// the traceparent header and content-type application/cloudevents+json.
// There is no Nats-Msg-Id: an event is published once (never retried), its
// id is in the body, and the stream's duplicate window would otherwise hold
// every event id of the last two minutes in the server's memory (millions
// under load).
//
// Events go out as core NATS messages: a publication neither waits for nor
// pays for a JetStream acknowledgement (asking for one per event cost about
// a seventh of the HTTP publishing benchmark's throughput). One event in
// ackEvery (and the first) asks for an acknowledgement anyway, so a stream
// that refuses events (deleted, out of storage) shows in the log within
// ackEvery events. Nothing is retried either way: the event log in the
// database is the durable record, and webhooks have their own outbox.
func (b *Bus) PublishEvent(ctx context.Context, ce *events.CloudEvent, body []byte) error {
	b.mu.Lock()
	nc, js := b.nc, b.js
	b.mu.Unlock()
	if nc == nil || js == nil {
		return ErrNotStarted
	}
	m := nats.NewMsg(b.subjects.Event(ce.Instance, ce.Type))
	m.Data = body
	m.Header.Set("Content-Type", "application/cloudevents+json")
	if ce.TraceParent != "" {
		m.Header.Set(HeaderTraceParent, ce.TraceParent)
	}
	if b.eventsPublished.Add(1)%ackEvery == 1 {
		_, err := js.PublishMsgAsync(m)
		return err
	}
	return nc.PublishMsg(m)
}

// ackEvery: one published event in ackEvery asks JetStream for an
// acknowledgement (see PublishEvent).
const ackEvery = 64

var _ events.Publisher = (*Bus)(nil)

// Enqueue queues a node execution on the trigger stream (Prefer:
// respond-async). The request was authenticated by HTTP: instead of the
// user's token, the trigger carries [HeaderAuth], an HMAC only statusflow
// can compute. Nats-Msg-Id is the idempotency key when given, else the
// pre-assigned message id, and the consumer uses it as the idempotency key;
// the pre-assigned message id travels in [HeaderMessageID]. Enqueue returns
// once JetStream has stored the trigger.
func (b *Bus) Enqueue(ctx context.Context, nodeID string, req nodes.ExecuteRequest) error {
	js, err := b.jetStream()
	if err != nil {
		return status.Wrap(status.CodeInternal, "Internal error", err)
	}
	key := signKey(b.authHash())
	body, err := json.Marshal(struct {
		Input  json.RawMessage `json:"input"`
		Origin status.Origin   `json:"origin"`
	}{req.Input, req.Origin})
	if err != nil {
		return status.Wrap(status.CodeInvalid, "Invalid request body", err)
	}
	m := nats.NewMsg(b.subjects.Trigger(nodeID, req.Instance))
	m.Data = body
	msgID := cmp.Or(req.IdempotencyKey, req.MessageID, uuid.NewString())
	m.Header.Set(nats.MsgIdHdr, msgID)
	if req.MessageID != "" {
		m.Header.Set(HeaderMessageID, req.MessageID)
	}
	if req.TraceParent != "" {
		m.Header.Set(HeaderTraceParent, req.TraceParent)
	}
	m.Header.Set(HeaderAuth, sign(key, m.Subject, msgID, req.MessageID, body))
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return status.Wrap(status.CodeInternal, "Could not queue the request", err)
	}
	return nil
}

func (b *Bus) authHash() string {
	if b.auth == nil {
		return ""
	}
	return b.auth.AccountHash()
}

// handleRequest is the request door, <prefix>.request.<nodeId>.<instance>: a
// core NATS request is copied into the trigger stream with [HeaderReplyTo]
// set to the requester's inbox, so it runs the one durable path (auth, DLQ,
// idempotency) and the consumer answers with the execute result. If the
// copy cannot be stored, or it is a duplicate Nats-Msg-Id, the requester is
// answered at once with an error envelope.
func (b *Bus) handleRequest(m *nats.Msg) {
	node, inst, ok := b.subjects.ParseTrigger("request", m.Subject)
	respond := func(code status.Code, msg string) {
		if m.Reply != "" {
			m.Respond(replyBody(nil, &status.Error{Code: code, Message: msg}, ""))
		}
	}
	if !ok {
		respond(status.CodeInvalid, "a request subject is "+b.cfg.Prefix+".request.<nodeId>.<instance>")
		return
	}
	js, err := b.jetStream()
	if err != nil {
		respond(status.CodeInternal, "statusflow is stopping")
		return
	}
	fm := nats.NewMsg(b.subjects.Trigger(node, inst))
	fm.Data = m.Data
	for k, vs := range m.Header {
		fm.Header[k] = vs
	}
	fm.Header.Del(HeaderAuth)
	if m.Reply != "" {
		fm.Header.Set(HeaderReplyTo, m.Reply)
	}
	ctx, cancel := context.WithTimeout(b.runCtx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, fm)
	if err != nil {
		respond(status.CodeInternal, "Could not queue the request: "+err.Error())
		return
	}
	if ack.Duplicate {
		respond("duplicate", "A trigger with this Nats-Msg-Id was already received (stream sequence "+strconv.FormatUint(ack.Sequence, 10)+"); its result went to the first requester")
	}
}

// startEmbedded starts nats-server in-process with JetStream in
// DataDir/nats, listening on cfg.Listen, or on a free port when that one is
// taken (the URL is logged).
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	host, portStr, _ := net.SplitHostPort(cfg.Listen)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("STATUSFLOW_NATS_LISTEN %q: bad port", cfg.Listen)
	}
	if port == 0 {
		// nats-server reads port 0 as "the default, 4222"; we mean any free port.
		port = server.RANDOM_PORT
	} else if ln, err := net.Listen("tcp", cfg.Listen); err != nil {
		log.Warn("STATUSFLOW_NATS_LISTEN is taken; the embedded NATS server uses a free port", "listen", cfg.Listen, "err", err)
		port = server.RANDOM_PORT
	} else {
		ln.Close()
	}
	opts := &server.Options{
		ServerName: "statusflow",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.SetLoggerV2(serverLogger{log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(cfg.ConnectTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready after %s (STATUSFLOW_NATS_LISTEN %s, store %s)", cfg.ConnectTimeout, cfg.Listen, opts.StoreDir)
	}
	log.Info("embedded nats server listening", "url", ns.ClientURL(), "store", opts.StoreDir)
	return ns, nil
}

// serverLogger sends nats-server's log to slog: notices at debug, warnings
// and errors as such.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  {}
func (l serverLogger) Tracef(format string, v ...any)  {}

// redact hides a password in a URL for logs.
func redact(u string) string {
	if i, j := strings.LastIndexByte(u, '@'), strings.Index(u, "://"); i > 0 && j > 0 && i > j {
		return u[:j+3] + "***" + u[i:]
	}
	return u
}
