package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/statusflow/statusflow/internal/store"
)

// ErrUnknownEngine is returned by Create for an engine name no engine has.
var ErrUnknownEngine = errors.New("unknown engine")

// managerStore is what the Manager needs from the store.
type managerStore interface {
	InstanceInsert(ctx context.Context, in *store.Instance) error
	InstanceGetByName(ctx context.Context, name string) (*store.Instance, error)
	InstanceList(ctx context.Context) ([]*store.Instance, error)
	InstanceSetDevice(ctx context.Context, name, jid string) error
	InstanceSetState(ctx context.Context, name, state string) error
	InstanceDelete(ctx context.Context, name string) error
}

// Manager owns the open session of every instance: it opens them at start
// (stored whatsmeow sessions reconnect by themselves), creates and deletes
// instances, and records state changes.
type Manager struct {
	store   managerStore
	engines map[string]Engine
	log     *slog.Logger
	// OnState, when set, is called after every recorded state change (the
	// events fan-out turns it into an instance.state event).
	OnState func(StateChange)
	// OnReceipt, when set, is called with every status view a session
	// reports (the core records it and emits status.viewed).
	OnReceipt func(Receipt)
	// OnQR, when set, is called with every QR code of a running pairing, the
	// first and each one WhatsApp rotates in (about every 20 s). It is kept
	// in process (the console's live stream), never stored nor published.
	OnQR func(instance, code string)

	// OnCreate, when set, is called after Create opened a new instance
	// here (it must not block: clustering places the instance on the
	// least-loaded replica in the background).
	OnCreate func(instance string)

	mu       sync.Mutex
	sessions map[string]Session
	gate     Gate // see SetGate; nil: every session opens here
	// reasons is each instance's last state reason. Its own lock: sessions
	// report states from inside Open, while mu is held.
	reasonsMu sync.Mutex
	reasons   map[string]string
}

// NewManager returns a manager for the given engines.
func NewManager(st managerStore, log *slog.Logger, engines ...Engine) *Manager {
	m := &Manager{store: st, engines: map[string]Engine{}, log: log, sessions: map[string]Session{}, reasons: map[string]string{}}
	for _, e := range engines {
		m.engines[e.Name()] = e
	}
	return m
}

// HasEngine reports whether an engine of that name is configured.
func (m *Manager) HasEngine(name string) bool { _, ok := m.engines[name]; return ok }

// Start opens a session for every stored instance.
func (m *Manager) Start(ctx context.Context) error {
	list, err := m.store.InstanceList(ctx)
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	for _, in := range list {
		if _, err := m.open(ctx, in); err != nil && !errors.Is(err, ErrOwnedElsewhere) {
			m.log.Error("instance did not open", "instance", in.Name, "engine", in.Engine, "err", err)
		}
	}
	return nil
}

// Stop closes every session without unlinking. A second Stop is harmless.
// It has the Start/Stop(ctx) shape of every service; closing a session
// only disconnects and waits for its goroutines, which end at once, so ctx
// is not needed to bound it.
func (m *Manager) Stop(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range m.sessions {
		s.Close()
		delete(m.sessions, name)
		if m.gate != nil {
			// After the close: the next owner may connect at once.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m.gate.Release(ctx, name)
			cancel()
		}
	}
	return nil
}

// Create stores a new instance and opens its session. [store.ErrConflict] when the name is taken.
func (m *Manager) Create(ctx context.Context, name, engine, tokenHash string) (*store.Instance, Session, error) {
	if _, ok := m.engines[engine]; !ok {
		return nil, nil, ErrUnknownEngine
	}
	in := &store.Instance{Name: name, Engine: engine, TokenHash: tokenHash, State: string(StateDisconnected), CreatedAt: time.Now().UTC()}
	if err := m.store.InstanceInsert(ctx, in); err != nil {
		return nil, nil, err
	}
	s, err := m.open(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	in.State = string(s.State())
	if m.OnCreate != nil {
		m.OnCreate(name)
	}
	return in, s, nil
}

// Session returns the open session of an instance, opening it if needed;
// [store.ErrNotFound] for unknown instances.
func (m *Manager) Session(ctx context.Context, name string) (Session, error) {
	m.mu.Lock()
	s, ok := m.sessions[name]
	m.mu.Unlock()
	if ok {
		return s, nil
	}
	in, err := m.store.InstanceGetByName(ctx, name)
	if err != nil {
		return nil, err
	}
	s, err = m.open(ctx, in)
	if errors.Is(err, ErrOwnedElsewhere) {
		return notOwned{instance: name}, nil
	}
	return s, err
}

// Delete logs the instance out, closes its session and removes it.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if _, err := m.store.InstanceGetByName(ctx, name); err != nil {
		return err
	}
	m.mu.Lock()
	s, ok := m.sessions[name]
	delete(m.sessions, name)
	m.mu.Unlock()
	if ok {
		if err := s.Logout(ctx); err != nil && !errors.Is(err, ErrNotPaired) {
			m.log.Warn("logout before delete failed; removing anyway", "instance", name, "err", err)
		}
		s.Close()
		if m.gate != nil {
			m.gate.Release(ctx, name)
		}
	}
	return m.store.InstanceDelete(ctx, name)
}

func (m *Manager) open(ctx context.Context, in *store.Instance) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[in.Name]; ok {
		return s, nil
	}
	e, ok := m.engines[in.Engine]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w %q", in.Name, ErrUnknownEngine, in.Engine)
	}
	name := in.Name
	var owned func() bool
	if m.gate != nil {
		// The lease first: a session opens only on the replica holding it.
		generation, err := m.gate.Acquire(ctx, name)
		if err != nil {
			return nil, err
		}
		owned = leaseHeld(m.gate, name, generation)
	}
	s, err := e.Open(ctx, OpenParams{
		Instance:  name,
		DeviceJID: in.DeviceJID,
		Owned:     owned,
		Hooks: Hooks{
			OnState:  m.recordState,
			OnPaired: func(instance, jid string) { m.recordDevice(instance, jid) },
			OnReceipt: func(r Receipt) {
				if m.OnReceipt != nil {
					m.OnReceipt(r)
				}
			},
			OnQR: func(instance, code string) {
				if m.OnQR != nil {
					m.OnQR(instance, code)
				}
			},
		},
	})
	if err != nil {
		if m.gate != nil {
			m.gate.Release(ctx, name)
		}
		return nil, err
	}
	if m.gate != nil {
		s = fence(s, name, owned)
	}
	m.sessions[name] = s
	return s, nil
}

// Reason is the reason of an instance's last state change ("" when none
// was reported since start).
func (m *Manager) Reason(instance string) string {
	m.reasonsMu.Lock()
	defer m.reasonsMu.Unlock()
	return m.reasons[instance]
}

// ReasonAdvice says what to do about an actionable state reason, "" for others.
func ReasonAdvice(reason string) string {
	switch reason {
	case ReasonClientOutdated:
		return "WhatsApp refused this client as outdated and a fresh WhatsApp Web version did not help: update statusflow (a newer whatsmeow), or set STATUSFLOW_WA_VERSION to the version WhatsApp Web shows (README \"Keeping up with WhatsApp\")"
	case ReasonSyncingContacts:
		return "logged in, but the phone has not sent the contact list yet; a full resync was requested: keep the phone online with WhatsApp open"
	}
	return ""
}

func (m *Manager) recordState(c StateChange) {
	m.reasonsMu.Lock()
	m.reasons[c.Instance] = c.Reason
	m.reasonsMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.store.InstanceSetState(ctx, c.Instance, string(c.State)); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Error("record instance state", "instance", c.Instance, "err", err)
	}
	if c.State == StateLoggedOut {
		m.recordDevice(c.Instance, "")
	}
	m.log.Info("instance state", "instance", c.Instance, "state", c.State, "reason", c.Reason)
	if m.OnState != nil {
		m.OnState(c)
	}
}

func (m *Manager) recordDevice(instance, jid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.store.InstanceSetDevice(ctx, instance, jid); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Error("record linked device", "instance", instance, "err", err)
	}
}
