package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/whatsapp"
)

// placer is what placement moves sessions with (the whatsapp.Manager).
type placer interface {
	// Session opens an instance's session here (taking its lease).
	Session(ctx context.Context, name string) (whatsapp.Session, error)
	// Handoff closes the session here and releases its lease.
	Handoff(ctx context.Context, name string) bool
}

// Placement spreads instances over the live replicas. The rule, with n
// live replicas and each one's count of owned instances (from the
// heartbeats in the replicas bucket, at most a third of the TTL old):
//
//   - A replica hands one instance to the least-loaded replica when it owns
//     at least two more than that one (a new instance it just created
//     included), so a move never makes the two swap places: that gap of two
//     is the hysteresis that keeps instances from flapping.
//   - At most one instance moves per replica per tick (a third of the lease
//     TTL), and a replica moves again only once every live replica has sent
//     a heartbeat newer than its last move (the counts it decides on include
//     that move). A replica that joins therefore takes a share over time.
//   - An unowned instance (its owner died) is taken by the first replica
//     whose reconcile finds it, as fast as before (failover is not delayed
//     for placement's sake); the rule above then spreads them.
//
// The move itself: the owner closes the session and releases the lease,
// then asks the target over NATS (<prefix>.cluster.take.<replica>) to open
// it now; the old owner does not take it back for one TTL.
type Placement struct {
	leases *Leases
	nc     *nats.Conn
	prefix string
	mgr    placer
	log    *slog.Logger

	mu        sync.Mutex
	replicas  []ReplicaInfo // as of the last tick
	taken     int           // instances taken on request since the last tick
	lastMove  time.Time
	moves     int
	sub       *nats.Subscription
	inflight  sync.WaitGroup
	stopped   bool
	holdUntil map[string]time.Time
}

// NewPlacement returns the placement of the replica holding leases.
func NewPlacement(nc *nats.Conn, leases *Leases, mgr placer, prefix string, log *slog.Logger) *Placement {
	if prefix == "" {
		prefix = "statusflow"
	}
	p := &Placement{leases: leases, nc: nc, prefix: prefix, mgr: mgr, log: log, holdUntil: map[string]time.Time{}}
	leases.holdOff = p.heldOff
	return p
}

func (p *Placement) subject(replica string) string { return p.prefix + ".cluster.take." + replica }

// Start takes handed-off instances on this replica's subject.
func (p *Placement) Start(context.Context) error {
	sub, err := p.nc.Subscribe(p.subject(p.leases.cfg.Replica), func(m *nats.Msg) {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.inflight.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.inflight.Done()
			ctx, cancel := context.WithTimeout(context.Background(), p.leases.TTL())
			defer cancel()
			name := string(m.Data)
			s, err := p.mgr.Session(ctx, name)
			if err == nil && s.State() == whatsapp.StateDisconnected {
				if _, held := p.leases.Held(name); !held {
					err = errors.New("not taken")
				}
			}
			if err != nil {
				m.Respond([]byte("error: " + err.Error()))
				return
			}
			p.mu.Lock()
			p.taken++
			p.mu.Unlock()
			m.Respond([]byte("ok"))
		}()
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.sub = sub
	p.mu.Unlock()
	return p.nc.Flush()
}

// Stop takes no more instances and waits for the takes under way.
func (p *Placement) Stop(ctx context.Context) error {
	p.mu.Lock()
	sub := p.sub
	p.sub, p.stopped = nil, true
	p.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
	done := make(chan struct{})
	go func() { p.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heldOff reports whether this replica handed instance off less than a TTL
// ago (it must not take it back at once).
func (p *Placement) heldOff(instance string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.holdUntil[instance]
	if ok && time.Now().After(until) {
		delete(p.holdUntil, instance)
		return false
	}
	return ok
}

// counts returns this replica's owned count (live) and the least-loaded
// other replica (by its last heartbeat; ties by id), "" when alone.
func (p *Placement) counts() (mine int, least string, leastCount int) {
	mine = len(p.leases.HeldAll())
	p.mu.Lock()
	defer p.mu.Unlock()
	leastCount = -1
	for _, r := range p.replicas {
		if r.ID == p.leases.cfg.Replica {
			continue
		}
		if leastCount < 0 || r.InstancesOwned < leastCount {
			least, leastCount = r.ID, r.InstancesOwned
		}
	}
	return mine, least, leastCount
}

// Tick refreshes the replica counts and moves at most one instance to the
// least-loaded replica. The cluster loop calls it after each heartbeat.
func (p *Placement) Tick(ctx context.Context) {
	reps, err := p.leases.Replicas(ctx)
	if err != nil {
		p.log.Warn("cluster: list replicas", "err", err)
		return
	}
	p.mu.Lock()
	p.replicas, p.taken = reps, 0
	fresh := true
	for _, r := range reps {
		if r.LastHeartbeat.Before(p.lastMove) {
			fresh = false // its count may not include the last move yet
		}
	}
	p.mu.Unlock()
	if !fresh {
		return
	}
	held := p.leases.HeldAll()
	sort.Slice(held, func(i, j int) bool { return held[i].Instance < held[j].Instance })
	if len(held) > 0 {
		p.Place(ctx, held[len(held)-1].Instance)
	}
}

// Place hands instance (held here) to the least-loaded replica when this
// one owns at least two more; true when it moved. Called for each new
// instance and by Tick.
func (p *Placement) Place(ctx context.Context, instance string) bool {
	mine, least, leastCount := p.counts()
	if least == "" || mine-leastCount < 2 {
		return false
	}
	if _, held := p.leases.Held(instance); !held {
		return false
	}
	p.mu.Lock()
	p.holdUntil[instance] = time.Now().Add(p.leases.TTL())
	p.lastMove = time.Now()
	p.moves++
	// The target's count as this replica now sees it, until its next heartbeat.
	for i := range p.replicas {
		if p.replicas[i].ID == least {
			p.replicas[i].InstancesOwned++
		}
	}
	p.mu.Unlock()
	if !p.mgr.Handoff(ctx, instance) {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, p.leases.TTL())
	defer cancel()
	rep, err := p.nc.RequestWithContext(rctx, p.subject(least), []byte(instance))
	if err != nil || string(rep.Data) != "ok" {
		// Unowned now: the replicas' reconcile takes it within two ticks.
		msg := ""
		if rep != nil {
			msg = string(rep.Data)
		}
		p.log.Warn("cluster: hand an instance off", "instance", instance, "to", least, "err", err, "answer", msg)
		return false
	}
	p.log.Info("cluster: handed an instance off", "instance", instance, "to", least, "owned", mine-1, "theirs", leastCount+1)
	return true
}
