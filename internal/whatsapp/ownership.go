package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
)

// Gate is who may open an instance's session when several replicas share
// one database (internal/cluster's leases): WhatsApp allows one connection
// per linked device, so two replicas opening the same session would kick
// each other off and write the same Signal sessions. Without a Gate (the
// embedded default, one process) the Manager opens every session.
type Gate interface {
	// Acquire takes (or keeps) the instance for this replica and returns the
	// generation its session is opened with; an error wrapping
	// ErrOwnedElsewhere when another replica holds it.
	Acquire(ctx context.Context, instance string) (generation uint64, err error)
	// Valid is the fencing check: this replica still holds the instance
	// with that generation.
	Valid(instance string, generation uint64) bool
	// Release gives the instance up (on close).
	Release(ctx context.Context, instance string) error
}

// ErrNotOwner is what a send gets on a replica that does not hold the
// instance (or no longer does): it is an ErrNotConnected, so callers answer
// 503 and nothing is sent twice.
var ErrNotOwner = fmt.Errorf("%w: instance owned by another replica", ErrNotConnected)

// SetGate makes the Manager open sessions only through g. Call before Start.
func (m *Manager) SetGate(g Gate) { m.gate = g }

// fenced is a session opened under a lease: every send first checks the
// lease is still the one it was opened with, so a replica that lost its
// lease (expired while cut off from NATS, taken over) never sends.
type fenced struct {
	Session
	instance string
	held     func() bool // leaseHeld of the lease it was opened under
}

func (f *fenced) valid() bool { return f.held() }

// leaseHeld is the fencing check of a session opened under the lease of
// instance at generation: the lease is still that one. The wrapper checks
// it before each send and the session before its own background work
// (OpenParams.Owned).
func leaseHeld(g Gate, instance string, generation uint64) func() bool {
	return func() bool { return g.Valid(instance, generation) }
}

func (f *fenced) State() State {
	if !f.valid() {
		return StateDisconnected
	}
	return f.Session.State()
}

func (f *fenced) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	if !f.valid() {
		return time.Time{}, ErrNotOwner
	}
	return f.Session.SendStatus(ctx, id, msg)
}

func (f *fenced) RevokeStatus(ctx context.Context, id string) (time.Time, error) {
	if !f.valid() {
		return time.Time{}, ErrNotOwner
	}
	return f.Session.RevokeStatus(ctx, id)
}

// fencedReader is a fenced session whose session is an [AudienceReader]
// (both engines are): the audience preview and a publication's audience
// keep working through the fence. A session that is not one stays not one.
type fencedReader struct{ *fenced }

func (f fencedReader) Audience(ctx context.Context) (*Audience, error) {
	if !f.valid() {
		return nil, ErrNotOwner
	}
	return f.Session.(AudienceReader).Audience(ctx)
}

// SimulateViews keeps the sandbox's view simulation through the fence.
func (f *fenced) SimulateViews(ctx context.Context, messageID, kind string, viewers []string) error {
	sim, ok := f.Session.(viewSimulator)
	if !ok {
		return fmt.Errorf("instance %s: %w", f.instance, ErrNotSandbox)
	}
	return sim.SimulateViews(ctx, messageID, kind, viewers)
}

func fence(s Session, instance string, held func() bool) Session {
	f := &fenced{Session: s, instance: instance, held: held}
	if _, ok := s.(AudienceReader); ok {
		return fencedReader{f}
	}
	return f
}

// notOwned is the session a replica answers with for an instance another
// replica holds: disconnected, every send refused.
type notOwned struct{ instance string }

func (notOwned) State() State                                      { return StateDisconnected }
func (notOwned) JID() string                                       { return "" }
func (notOwned) Connect(context.Context, string) (*Pairing, error) { return nil, ErrNotOwner }
func (notOwned) Reconnect(context.Context) error                   { return ErrNotOwner }
func (notOwned) Logout(context.Context) error                      { return ErrNotOwner }
func (notOwned) Close() error                                      { return nil }
func (notOwned) Upload(context.Context, io.ReadSeeker, int64, MediaKind) (*Upload, error) {
	return nil, ErrNotOwner
}
func (notOwned) SendStatus(context.Context, string, *waE2E.Message) (time.Time, error) {
	return time.Time{}, ErrNotOwner
}
func (notOwned) RevokeStatus(context.Context, string) (time.Time, error) {
	return time.Time{}, ErrNotOwner
}

// leaseLister is a [Gate] that can list, in one call, the instances whose
// live lease this replica does not hold; Reconcile then tries to open only
// the others.
type leaseLister interface {
	LeasedElsewhere(ctx context.Context) (map[string]bool, error)
}

// ErrOwnedElsewhere is the error a Gate wraps when another replica holds
// the instance.
var ErrOwnedElsewhere = errors.New("instance owned by another replica")

// Reconcile brings the open sessions in line with the leases: it closes the
// sessions whose lease is gone (taken over, or lapsed while this replica was
// cut off) and opens the stored instances no replica holds (a dead
// replica's, once its leases expired). The cluster loop calls it every
// third of a lease's lifetime, which bounds failover.
func (m *Manager) Reconcile(ctx context.Context) (opened, closed int) {
	if m.gate == nil {
		return 0, 0
	}
	closed = m.CloseLapsed()
	list, err := m.store.InstanceList(ctx)
	if err != nil {
		m.log.Warn("cluster: list instances", "err", err)
		return opened, closed
	}
	m.mu.Lock()
	closedHere := list[:0]
	for _, in := range list {
		if _, open := m.sessions[in.Name]; !open {
			closedHere = append(closedHere, in)
		}
	}
	m.mu.Unlock()
	if len(closedHere) == 0 {
		return opened, closed
	}
	// One listing of the leases instead of a refused take per instance
	// another replica holds (with 1,000 instances on three replicas, that
	// was ~1,300 NATS round trips per replica and tick).
	var leased map[string]bool
	if l, ok := m.gate.(leaseLister); ok {
		if leased, err = l.LeasedElsewhere(ctx); err != nil {
			m.log.Warn("cluster: list leases", "err", err)
			leased = nil // try each one, as without a listing
		}
	}
	for _, in := range closedHere {
		if leased[in.Name] {
			continue
		}
		if _, err := m.open(ctx, in); err == nil {
			opened++
			m.log.Info("cluster: took over instance", "instance", in.Name)
		} else if !errors.Is(err, ErrOwnedElsewhere) {
			m.log.Warn("cluster: open instance", "instance", in.Name, "err", err)
		}
	}
	return opened, closed
}

// Handoff closes the session of an instance here and releases its lease so
// another replica can take it (placement); false when it is not open here.
func (m *Manager) Handoff(ctx context.Context, name string) bool {
	if m.gate == nil {
		return false
	}
	m.mu.Lock()
	s, ok := m.sessions[name]
	delete(m.sessions, name)
	m.mu.Unlock()
	if !ok {
		return false
	}
	s.Close()
	// After the close: the next owner may connect at once.
	if err := m.gate.Release(ctx, name); err != nil {
		m.log.Warn("cluster: release a handed-off instance", "instance", name, "err", err)
	}
	return true
}

// CloseLapsed closes the sessions whose lease is no longer valid (taken
// over, or about to lapse while this replica cannot renew it). It asks
// neither NATS nor the database, so the cluster runs it far more often than
// Reconcile: a session must be closed before another replica can take its
// instance, or both would hold WhatsApp's one connection per device.
func (m *Manager) CloseLapsed() (closed int) {
	if m.gate == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range m.sessions {
		if f, ok := asFenced(s); ok && !f.valid() {
			s.Close()
			delete(m.sessions, name)
			closed++
		}
	}
	return closed
}

func asFenced(s Session) (*fenced, bool) {
	switch f := s.(type) {
	case *fenced:
		return f, true
	case fencedReader:
		return f.fenced, true
	}
	return nil, false
}
