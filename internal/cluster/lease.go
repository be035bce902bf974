// Package cluster is statusflow's scale-out machinery on NATS: which replica
// owns each instance's session. It builds on JetStream KV, not on a protocol
// of its own (issue 14).
//
// Ownership is a lease: one key per instance in a KV bucket whose entries
// expire after the bucket's TTL. A replica takes an instance with a Create
// (refused while another replica's lease lives), keeps it by updating the key
// with the revision it last wrote (refused once anyone else wrote it), and
// gives it back by deleting it at that revision. A replica that dies stops
// renewing; its leases age out after the TTL and another replica's Create
// succeeds. The lease's generation (the revision its Create got) is what a
// session is opened with; [Leases.Valid] is the fencing check a send makes.
package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config configures [Leases].
type Config struct {
	// Bucket is the KV bucket holding the leases. Defaults to BucketDefault.
	Bucket string
	// Replica is this replica's id, the value of the leases it holds. Required.
	Replica string
	// TTL is how long a lease lives without renewal, the bound on how long a
	// dead replica's instances stay unowned. Defaults to TTLDefault.
	TTL time.Duration
	// Replicas is the bucket's replication in a NATS cluster. Defaults to 1.
	Replicas int
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Defaults.
const (
	BucketDefault = "statusflow_leases"
	TTLDefault    = 10 * time.Second
)

// ErrOwnedElsewhere is returned by Acquire when another replica holds the lease.
var ErrOwnedElsewhere = errors.New("cluster: instance owned by another replica")

// ErrLeaseLost is returned by Renew when the lease is no longer ours (it
// expired and another replica took it, or it was deleted).
var ErrLeaseLost = errors.New("cluster: lease lost")

// Lease is one instance's lease as this replica holds it.
type Lease struct {
	Instance string
	// Generation is the revision the lease was created with; it changes only
	// when ownership changes, so it is what a session is opened with.
	Generation uint64
	// Revision is the revision last written (by the last renewal).
	Revision uint64
	// Deadline is when the lease lapses unless renewed, on this replica's
	// clock, measured from before the write that set Revision (so it is never
	// later than the server's expiry).
	Deadline time.Time
}

// Leases takes, renews and releases instance leases for one replica.
type Leases struct {
	kv  jetstream.KeyValue
	reg jetstream.KeyValue // the replicas bucket (replicas.go)
	cfg Config

	mu   sync.Mutex
	held map[string]*Lease
	// lapsed is the revision this replica last wrote for each lease it let
	// lapse because NATS did not answer its renewals (not one it lost to
	// another replica): while the key is still at that revision, nobody
	// else has written it, so the lease may be taken back with an update at
	// that revision instead of waiting for it to expire (see Acquire).
	lapsed  map[string]uint64
	address string
	started time.Time
	// OnChange, when set, is told of every change of this replica's
	// ownership: "taken", "released" or "lost" (see [Leases.SetOnChange]).
	onChange func(instance, change string)
	// holdOff, when set, says this replica must not take instance now (it
	// just handed it off: [Placement]).
	holdOff func(instance string) bool
}

// New opens (or creates) the lease bucket.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Leases, error) {
	if cfg.Replica == "" {
		return nil, errors.New("cluster: Config.Replica is required")
	}
	if cfg.Bucket == "" {
		cfg.Bucket = BucketDefault
	}
	if cfg.TTL <= 0 {
		cfg.TTL = TTLDefault
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "statusflow instance ownership leases",
		TTL: cfg.TTL, History: 1, Replicas: cfg.Replicas, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: lease bucket %s: %w", cfg.Bucket, err)
	}
	reg, err := openReplicas(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	return &Leases{kv: kv, reg: reg, cfg: cfg, held: map[string]*Lease{}, lapsed: map[string]uint64{}, started: cfg.Now().UTC()}, nil
}

// key is an instance's KV key. Instance names may hold characters KV keys
// may not, so the name is base64url-encoded.
func key(instance string) string {
	return "i." + base64.RawURLEncoding.EncodeToString([]byte(instance))
}

// instanceOf is the instance a KV key names, the inverse of key.
func instanceOf(k string) (string, bool) {
	rest, ok := strings.CutPrefix(k, "i.")
	if !ok {
		return "", false
	}
	name, err := base64.RawURLEncoding.DecodeString(rest)
	return string(name), err == nil
}

// Acquire takes the lease of instance, or renews it when this replica
// already holds it. [ErrOwnedElsewhere] (wrapped, with the owner) when
// another replica does.
func (l *Leases) Acquire(ctx context.Context, instance string) (Lease, error) {
	if _, ok := l.Held(instance); ok {
		return l.Renew(ctx, instance)
	}
	if l.holdOff != nil && l.holdOff(instance) {
		return Lease{}, fmt.Errorf("%w: handed off by this replica moments ago", ErrOwnedElsewhere)
	}
	start := l.cfg.Now()
	rev, err := l.kv.Create(ctx, key(instance), []byte(l.cfg.Replica))
	if errors.Is(err, jetstream.ErrKeyExists) {
		owner, rev, gerr := l.Owner(ctx, instance)
		if gerr == nil && owner == l.cfg.Replica {
			if le, ok := l.retake(ctx, instance, rev, start); ok {
				return le, nil
			}
			// Our own lease from before a restart: not ours to trust (a
			// session may still run in the old process), so wait for it to
			// lapse like anyone else's.
			return Lease{}, fmt.Errorf("%w: %s (a previous run of this replica)", ErrOwnedElsewhere, owner)
		}
		return Lease{}, fmt.Errorf("%w: %s", ErrOwnedElsewhere, owner)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("cluster: acquire %s: %w", instance, err)
	}
	return l.hold(instance, rev, start), nil
}

// hold records the lease this replica just wrote at rev (at start) as held,
// a new generation, and returns a copy: the renewal loop updates the held
// one from now on.
func (l *Leases) hold(instance string, rev uint64, start time.Time) Lease {
	le := &Lease{Instance: instance, Generation: rev, Revision: rev, Deadline: start.Add(l.cfg.TTL)}
	out := *le
	l.mu.Lock()
	delete(l.lapsed, instance)
	l.held[instance] = le
	l.mu.Unlock()
	l.changed(instance, ChangeTaken)
	return out
}

// retake takes back a lease this replica let lapse (or whose margin it is
// in) because NATS did not answer its renewals, when the key is still at the
// revision this replica last wrote: nobody else wrote it since, and the
// update at that revision fails if anyone does first. A NATS node's crash
// makes the lease bucket elect a new leader (nats-server waits 4-9 s of
// missed heartbeats), longer than a lease outlives its last renewal here;
// without this, each instance would wait out its own expired lease before
// reopening. The session was closed when the lease stopped counting; it
// reopens under a new generation.
func (l *Leases) retake(ctx context.Context, instance string, rev uint64, start time.Time) (Lease, bool) {
	l.mu.Lock()
	last, ok := l.lapsed[instance]
	if le, held := l.held[instance]; held {
		last, ok = le.Revision, true
	}
	if ok && last != rev {
		// Someone wrote the key since: never ours to take back.
		delete(l.lapsed, instance)
	}
	l.mu.Unlock()
	if !ok || last != rev {
		return Lease{}, false
	}
	nrev, err := l.kv.Update(ctx, key(instance), []byte(l.cfg.Replica), rev)
	if err != nil {
		return Lease{}, false
	}
	return l.hold(instance, nrev, start), true
}

// Lapsed lists the instances whose lease this replica let lapse while NATS
// did not answer its renewals, and may still take back (see retake).
func (l *Leases) Lapsed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.lapsed))
	for inst := range l.lapsed {
		out = append(out, inst)
	}
	return out
}

// Renew extends a held lease: an update at the revision last written, which
// the server refuses once anyone else has written the key. [ErrLeaseLost]
// then, and the lease is forgotten.
func (l *Leases) Renew(ctx context.Context, instance string) (Lease, error) {
	l.mu.Lock()
	le, ok := l.held[instance]
	var prev Lease
	if ok {
		prev = *le
	}
	l.mu.Unlock()
	if !ok {
		return Lease{}, ErrLeaseLost
	}
	start := l.cfg.Now()
	rev, err := l.kv.Update(ctx, key(instance), []byte(l.cfg.Replica), prev.Revision)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			l.forget(instance, prev.Generation, false)
			return Lease{}, ErrLeaseLost
		}
		// NATS unreachable: the lease stands until its deadline.
		return prev, fmt.Errorf("cluster: renew %s: %w", instance, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok = l.held[instance]
	if !ok || le.Generation != prev.Generation {
		return Lease{}, ErrLeaseLost
	}
	le.Revision, le.Deadline = rev, start.Add(l.cfg.TTL)
	return *le, nil
}

// Release gives the lease back at once (a replica shutting down, or
// handing an instance to a less loaded one), so no one waits for the TTL.
func (l *Leases) Release(ctx context.Context, instance string) error {
	l.mu.Lock()
	le, ok := l.held[instance]
	delete(l.held, instance)
	delete(l.lapsed, instance)
	l.mu.Unlock()
	if !ok {
		return nil
	}
	l.changed(instance, ChangeReleased)
	err := l.kv.Delete(ctx, key(instance), jetstream.LastRevision(le.Revision))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("cluster: release %s: %w", instance, err)
	}
	return nil
}

// forget drops a lease this replica no longer holds. lapsed: it was not
// renewed in time (NATS did not answer), not taken by anyone: remember the
// revision last written so [Leases.retake] can take it back.
func (l *Leases) forget(instance string, generation uint64, lapsed bool) {
	l.mu.Lock()
	le, ok := l.held[instance]
	ok = ok && le.Generation == generation
	if ok {
		delete(l.held, instance)
		if lapsed {
			l.lapsed[instance] = le.Revision
		}
	}
	l.mu.Unlock()
	if ok {
		l.changed(instance, ChangeLost)
	}
}

// Ownership changes, as [Leases.SetOnChange] reports them.
const (
	ChangeTaken    = "taken"    // this replica took the lease (a new generation)
	ChangeReleased = "released" // this replica gave it back (stop, delete, rebalance)
	ChangeLost     = "lost"     // this replica's lease lapsed or was taken over
)

// SetOnChange makes l call f after each change of this replica's ownership
// (the instance.owner events). Call before the leases are used.
func (l *Leases) SetOnChange(f func(instance, change string)) { l.onChange = f }

func (l *Leases) changed(instance, change string) {
	if l.onChange != nil {
		l.onChange(instance, change)
	}
}

// Replica is this replica's id.
func (l *Leases) Replica() string { return l.cfg.Replica }

// Owner returns the replica holding instance's lease and the revision of
// its last write; "" when nobody does.
func (l *Leases) Owner(ctx context.Context, instance string) (string, uint64, error) {
	e, err := l.kv.Get(ctx, key(instance))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	return string(e.Value()), e.Revision(), nil
}

// Held returns this replica's lease of instance, if it holds one that is
// not about to lapse: a lease stops counting a quarter of the TTL before its
// deadline (see [Leases.Margin]), so the session opened with it is closed
// (Manager.CloseLapsed) before the server could let another replica take it,
// even when this replica's timers run late under load.
func (l *Leases) Held(instance string) (Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.held[instance]
	if !ok || !l.cfg.Now().Before(le.Deadline.Add(-l.Margin())) {
		return Lease{}, false
	}
	return *le, true
}

// Valid is the fencing check a send makes: the lease of instance is still
// the one of generation (the one the session was opened with) and its
// deadline has not passed. A replica cut off from NATS fails it once the
// lease could have lapsed on the server, before another replica can take
// the instance.
func (l *Leases) Valid(instance string, generation uint64) bool {
	le, ok := l.Held(instance)
	return ok && le.Generation == generation
}

// HeldAll returns every lease this replica holds.
func (l *Leases) HeldAll() []Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Lease, 0, len(l.held))
	for _, le := range l.held {
		out = append(out, *le)
	}
	return out
}

// renewParallel bounds the renewals in flight at once. Each is a round trip
// to NATS: one after the other, 1,000 leases took longer than a third of the
// TTL on a loaded machine (cmd/benchcluster), so leases lapsed between their
// renewals and ownership churned at rest.
const renewParallel = 32

// RenewAll renews every held lease once and returns the instances whose
// lease was lost or lapsed (their sessions must close), and whether some
// renewal failed because NATS did not answer (Run then tries again soon).
// The lease nearest its deadline goes first, alone: when it fails, NATS is
// not answering, and the others are not sent only to fail too (a lease
// bucket electing a new leader after a node crash answers nothing for
// seconds); only the leases already past their deadline are given up.
func (l *Leases) RenewAll(ctx context.Context) (lost []string, failed bool) {
	all := l.HeldAll()
	slices.SortFunc(all, func(a, b Lease) int { return a.Deadline.Compare(b.Deadline) })
	var mu sync.Mutex
	renew := func(le Lease) error {
		// Bounded: a request stuck on a NATS node that died must not hold
		// the other leases' renewals.
		rctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/3)
		_, err := l.Renew(rctx, le.Instance)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, ErrLeaseLost) {
			lost = append(lost, le.Instance)
		} else if err != nil {
			failed = true
		}
		return err
	}
	if len(all) > 0 {
		if err := renew(all[0]); err == nil || errors.Is(err, ErrLeaseLost) {
			var wg sync.WaitGroup
			sem := make(chan struct{}, renewParallel)
			for _, le := range all[1:] {
				sem <- struct{}{}
				wg.Add(1)
				go func() { defer wg.Done(); defer func() { <-sem }(); renew(le) }()
			}
			wg.Wait()
		}
	}
	if failed {
		// Given up only once past the deadline the server's expiry is
		// measured from (Held stopped counting them a margin before).
		for _, le := range l.HeldAll() {
			if !l.cfg.Now().Before(le.Deadline) {
				l.forget(le.Instance, le.Generation, true)
				lost = append(lost, le.Instance)
			}
		}
	}
	return lost, failed
}

// Run renews the held leases every TTL/3 until ctx ends, then calls tick
// (the manager's Reconcile: close what was lost, take what is unowned). After
// a renewal NATS did not answer, it tries again every TTL/20 (at least
// 100 ms): a lease bucket that lost its leader answers again once one is
// elected, and every renewal that lands before a lease's margin keeps its
// session open. It releases nothing on return: whoever closes a session
// releases its lease after the close, so the next owner never connects
// beside it.
func (l *Leases) Run(ctx context.Context, tick func()) {
	every := l.cfg.TTL / 3
	retry := max(l.cfg.TTL/20, 100*time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	lastTick := l.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, failed := l.RenewAll(ctx)
			// The tick (which asks the database and takes unowned
			// instances) runs on its schedule, and at once when NATS
			// answers again, not at every quick retry of an outage.
			if tick != nil && (!failed || l.cfg.Now().Sub(lastTick) >= every) {
				tick()
				lastTick = l.cfg.Now()
			}
			if failed {
				t.Reset(retry)
			} else {
				t.Reset(every)
			}
		}
	}
}

// Margin is how long before its deadline a lease stops being valid here.
// A healthy lease is renewed every third of the TTL, so its deadline stays at
// least two thirds of the TTL ahead; only a lease whose renewals failed gets
// within the margin.
func (l *Leases) Margin() time.Duration { return l.cfg.TTL / 4 }

// TTL is the leases' lifetime.
func (l *Leases) TTL() time.Duration { return l.cfg.TTL }

// Leased lists the instances that have a live lease, whoever holds it, in
// one listing of the bucket's keys (no read per key).
func (l *Leases) Leased(ctx context.Context) (map[string]bool, error) {
	lister, err := l.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for k := range lister.Keys() {
		if name, ok := instanceOf(k); ok {
			out[name] = true
		}
	}
	return out, nil
}

// Owners lists the instances that have a live lease, with their owners.
func (l *Leases) Owners(ctx context.Context) (map[string]string, error) {
	lister, err := l.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k := range lister.Keys() {
		e, err := l.kv.Get(ctx, k)
		if err != nil {
			continue // expired meanwhile
		}
		name, ok := instanceOf(k)
		if !ok {
			continue
		}
		out[name] = string(e.Value())
	}
	return out, nil
}
