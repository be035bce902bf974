package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/status"
)

// ForwardTimeoutDefault bounds how long a replica waits for the owner's
// answer to a forwarded command (media work included).
const ForwardTimeoutDefault = 2 * time.Minute

// Outcomes of a forwarded command, the `outcome` label of
// statusflow_cluster_forwarded_total.
const (
	ForwardOK          = "ok"          // the owner ran it and succeeded
	ForwardError       = "error"       // the owner ran it and answered an error
	ForwardNoOwner     = "no_owner"    // the lease is this replica's previous run's: wait for it to lapse
	ForwardUnreachable = "unreachable" // nobody listens on the owner's subject, or NATS failed
	ForwardTimeout     = "timeout"     // the owner did not answer in time
)

// localExecutor runs a command here, never forwarding (status.Service.ExecuteLocal).
type localExecutor interface {
	ExecuteLocal(ctx context.Context, cmd status.Command) (*status.Result, error)
}

// ForwardConfig configures a [Forwarder].
type ForwardConfig struct {
	// Prefix is the first token of the forwarding subjects
	// (STATUSFLOW_NATS_PREFIX). Defaults to "statusflow".
	Prefix string
	// Timeout bounds the wait for the owner's answer when the caller's
	// context has no deadline. Defaults to [ForwardTimeoutDefault].
	Timeout time.Duration
}

// Forwarder is the "any replica answers" half of clustering, a
// [status.Router]: a command for an instance another replica owns is sent to
// that replica over NATS request-reply on its own subject
// (<prefix>.cluster.execute.<replica>) and answered with the owner's result
// or error, which the front door then maps as if it were local (same
// envelope, status code and trace id: the owner continues the command's
// traceparent). The owner runs it with [status.Service.ExecuteLocal], so the
// idempotency claim, the send's fencing and the events all happen where the
// session is.
//
// In a failover gap (the lease is this replica's previous run's, nobody
// answers on the owner's subject, the answer times out) the command is
// refused as disconnected with a [errcode.Backoff] of the lease TTL, which
// the HTTP door answers as 503 with Retry-After. Nothing is sent twice: only
// a lease holder sends, and a retry with the same Idempotency-Key gets the
// first result from the shared database.
type Forwarder struct {
	nc     *nats.Conn
	leases *Leases
	exec   localExecutor
	cfg    ForwardConfig
	log    *slog.Logger

	http HTTPHandler // nil: forwarded HTTP requests are not taken

	// owners caches the owner of each instance forwarded lately, so a busy
	// instance's requests do not each read the lease bucket first (a KV get:
	// two NATS messages and ~30 µs here, of ~390 µs a forward adds; see
	// cmd/benchcluster). An entry lives a quarter of the lease TTL and is
	// dropped as soon as its owner does not answer or answers that it lost
	// the instance; the command is then located afresh and sent once more.
	// A stale entry costs a retry, never a wrong send: only the lease holder
	// sends, and an owner never forwards again.
	ownersMu sync.Mutex
	owners   map[string]cachedOwner

	// pool runs forwarded commands and HTTP requests on long-lived
	// goroutines (see workerPool).
	pool *workerPool

	mu       sync.Mutex
	subs     []*nats.Subscription
	inflight sync.WaitGroup
	stopped  bool
}

// NewForwarder returns the forwarder of the replica holding leases.
func NewForwarder(nc *nats.Conn, leases *Leases, exec localExecutor, cfg ForwardConfig, log *slog.Logger) *Forwarder {
	if cfg.Prefix == "" {
		cfg.Prefix = "statusflow"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = ForwardTimeoutDefault
	}
	return &Forwarder{nc: nc, leases: leases, exec: exec, cfg: cfg, log: log, owners: map[string]cachedOwner{},
		pool: newWorkerPool(serveWorkersMax, serveWorkerIdle)}
}

// ValidReplicaID reports why id cannot be a replica id: it is one NATS
// subject token (the replica's forwarding subject ends with it).
func ValidReplicaID(id string) error {
	if id == "" || strings.ContainsAny(id, ".*> \t\r\n") {
		return fmt.Errorf("STATUSFLOW_CLUSTER_REPLICA must be one NATS subject token (no '.', '*', '>' or spaces): %q", id)
	}
	return nil
}

// Subject is where replica takes forwarded commands.
func (f *Forwarder) Subject(replica string) string {
	return f.cfg.Prefix + ".cluster.execute." + replica
}

// Start takes forwarded commands on this replica's subject, and forwarded
// HTTP requests on its HTTP subject when [Forwarder.ServeHTTP] gave a handler.
func (f *Forwarder) Start(context.Context) error {
	sub, err := f.nc.Subscribe(f.Subject(f.leases.cfg.Replica), f.serve)
	if err != nil {
		return fmt.Errorf("cluster: forwarding subject: %w", err)
	}
	subs := []*nats.Subscription{sub}
	if f.http != nil {
		hsub, err := f.nc.Subscribe(f.HTTPSubject(f.leases.cfg.Replica), f.serveHTTP)
		if err != nil {
			sub.Unsubscribe()
			return fmt.Errorf("cluster: HTTP forwarding subject: %w", err)
		}
		subs = append(subs, hsub)
	}
	f.mu.Lock()
	f.subs = subs
	f.mu.Unlock()
	// The subscription must reach the server before anyone forwards here.
	return f.nc.Flush()
}

// Stop takes no more commands and waits for the running ones (each answers
// its requester), or for ctx. A second Stop is harmless.
func (f *Forwarder) Stop(ctx context.Context) error {
	f.mu.Lock()
	subs := f.subs
	f.subs, f.stopped = nil, true
	f.mu.Unlock()
	for _, sub := range subs {
		sub.Unsubscribe()
	}
	// Idle workers exit now, busy ones once their command is answered.
	f.pool.close()
	done := make(chan struct{})
	go func() { f.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve runs one forwarded command on a worker of the pool (not on NATS's
// delivery goroutine: a slow media publication must not hold the others)
// and answers with its outcome, in the format the command came in.
func (f *Forwarder) serve(m *nats.Msg) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return // the requester times out into the gap and retries elsewhere
	}
	f.inflight.Add(1)
	f.mu.Unlock()
	f.pool.run(func() {
		defer f.inflight.Done()
		var rep wireReply
		cmd, legacy, err := decodeCommand(m.Data)
		if err != nil {
			rep.Error = &wireError{Code: errcode.CodeInvalid, Message: "Invalid forwarded command: " + err.Error()}
		} else {
			// Not the subscription's lifetime: a command that started runs to
			// its end, as a local one would.
			ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
			res, err := f.exec.ExecuteLocal(ctx, cmd)
			cancel()
			if err != nil {
				e := errcode.AsError(err)
				rep.Error = &wireError{Code: e.Code, Message: e.Message}
				if wait, ok := errcode.RetryAfterOf(err); ok {
					rep.Error.RetryAfterMs = wait.Milliseconds()
				}
				if e.Code == errcode.CodeInternal || e.Code == errcode.CodeInsufficientStorage {
					f.log.Error("forwarded command failed", "instance", cmd.Instance, "traceparent", cmd.TraceParent, "err", err)
				}
			} else {
				rep.Result, rep.Replayed = res, res.Replayed
			}
		}
		if err := m.Respond(encodeReply(&rep, legacy)); err != nil {
			f.log.Warn("cluster: answer a forwarded command", "err", err)
		}
	})
}

// gap is the answer for an instance nobody can serve right now.
func (f *Forwarder) gap(kind, outcome, why string) error {
	metrics.ClusterForwarded(kind, outcome)
	return errcode.RetryAfter(errcode.Errorf(errcode.CodeDisconnected, "%s (%s); retry shortly", errcode.ErrDisconnected.Message, why), f.leases.TTL())
}

type cachedOwner struct {
	owner string
	until time.Time
}

// cachedOwnerOf returns the owner cached for instance, "" when none is.
func (f *Forwarder) cachedOwnerOf(instance string) string {
	f.ownersMu.Lock()
	defer f.ownersMu.Unlock()
	c, ok := f.owners[instance]
	if !ok || !time.Now().Before(c.until) {
		delete(f.owners, instance)
		return ""
	}
	return c.owner
}

func (f *Forwarder) cacheOwner(instance, owner string) {
	f.ownersMu.Lock()
	defer f.ownersMu.Unlock()
	if len(f.owners) >= 100_000 {
		clear(f.owners) // bounded: a flood of instance names cannot grow it
	}
	f.owners[instance] = cachedOwner{owner: owner, until: time.Now().Add(f.leases.TTL() / 4)}
}

func (f *Forwarder) forgetOwner(instance string) {
	f.ownersMu.Lock()
	defer f.ownersMu.Unlock()
	delete(f.owners, instance)
}

// Route implements [status.Router].
func (f *Forwarder) Route(ctx context.Context, cmd status.Command) (*status.Result, error, bool) {
	if _, ok := f.leases.Held(cmd.Instance); !ok {
		if owner := f.cachedOwnerOf(cmd.Instance); owner != "" {
			res, err := f.forward(ctx, owner, cmd)
			if !staleOwner(err) {
				return res, err, true
			}
			// The cached owner no longer serves it (it died, or the
			// instance moved): nothing ran there; locate it afresh.
			f.forgetOwner(cmd.Instance)
		}
	}
	owner, err := f.locate(ctx, KindCommand, cmd.Instance)
	switch {
	case err != nil:
		return nil, err, true
	case owner == "":
		return nil, nil, false
	}
	res, err := f.forward(ctx, owner, cmd)
	if err == nil || !staleOwner(err) {
		f.cacheOwner(cmd.Instance, owner)
	}
	return res, err, true
}

// staleOwner reports whether a forward's error says the replica it went to
// did not run the command because it does not serve the instance: nobody
// listens on its subject, or it answered the gap's disconnected (it lost the
// lease). A timeout is not one: the owner may still be running it.
func staleOwner(err error) bool {
	var fe *forwardError
	if errors.As(err, &fe) {
		return fe.outcome == ForwardUnreachable && fe.noResponders
	}
	wait, ok := errcode.RetryAfterOf(err)
	return ok && wait > 0 && errcode.AsError(err).Code == errcode.CodeDisconnected
}

// forwardError marks the gap errors forward returns, so Route can tell "the
// owner never got it" from "the owner may be running it".
type forwardError struct {
	error
	outcome      string
	noResponders bool
}

func (e *forwardError) Unwrap() error { return e.error }

func (f *Forwarder) forward(ctx context.Context, owner string, cmd status.Command) (*status.Result, error) {
	data, err := encodeCommand(cmd)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.cfg.Timeout)
		defer cancel()
	}
	reply, err := f.request(ctx, owner, cmd.TraceParent, data)
	if err != nil {
		return nil, err
	}
	rep, legacy, err := decodeReply(reply.Data)
	if err == nil && legacy && rep.Error != nil && rep.Error.Code == errcode.CodeInvalid {
		// An owner of an older build answers JSON: it could not read the
		// binary command and ran nothing (see wire.go). Send it the JSON
		// it reads; this lasts as long as the rolling upgrade. (Only its
		// invalid_request: any other answer means it ran something, and a
		// command is never sent twice.)
		if data, err = encodeCommandJSON(cmd); err != nil {
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
		}
		if reply, err = f.request(ctx, owner, cmd.TraceParent, data); err != nil {
			return nil, err
		}
		rep, _, err = decodeReply(reply.Data)
	}
	if err != nil {
		metrics.ClusterForwarded(KindCommand, ForwardError)
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", fmt.Errorf("owner %s: undecodable answer: %w", owner, err))
	}
	if rep.Error != nil {
		metrics.ClusterForwarded(KindCommand, ForwardError)
		var e error = &errcode.Error{Code: rep.Error.Code, Message: rep.Error.Message}
		if rep.Error.RetryAfterMs > 0 {
			e = errcode.RetryAfter(e, time.Duration(rep.Error.RetryAfterMs)*time.Millisecond)
		}
		return nil, e
	}
	if rep.Result == nil {
		metrics.ClusterForwarded(KindCommand, ForwardError)
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", fmt.Errorf("owner %s: empty answer", owner))
	}
	metrics.ClusterForwarded(KindCommand, ForwardOK)
	rep.Result.Replayed = rep.Replayed
	return rep.Result, nil
}

// request sends an encoded command to owner and returns its answer, or the
// gap's error when none came.
func (f *Forwarder) request(ctx context.Context, owner, traceParent string, data []byte) (*nats.Msg, error) {
	msg := nats.NewMsg(f.Subject(owner))
	msg.Data = data
	msg.Header.Set("traceparent", traceParent)
	reply, err := f.nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &forwardError{error: f.gap(KindCommand, ForwardUnreachable, "its replica "+owner+" does not answer"),
			outcome: ForwardUnreachable, noResponders: true}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		// The owner may still finish it: a retry with the same
		// Idempotency-Key gets that result, never a second send.
		return nil, f.gap(KindCommand, ForwardTimeout, "its replica "+owner+" did not answer in time")
	case err != nil:
		return nil, f.gap(KindCommand, ForwardUnreachable, "forwarding to its replica "+owner+" failed: "+err.Error())
	}
	return reply, nil
}

// Backoff implements [status.Router]: the lease TTL when this replica does
// not hold the instance (a "not connected" here is a failover gap).
func (f *Forwarder) Backoff(instance string) time.Duration {
	if _, ok := f.leases.Held(instance); ok {
		return 0
	}
	return f.leases.TTL()
}
