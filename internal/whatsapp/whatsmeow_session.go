package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/statusflow/statusflow/internal/backoff"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
)

// whatsmeowSession is one instance's whatsmeow client and device.
//
// State follows whatsmeow's events (see [eventState]). A session is
// connected only once it is logged in and its contact list (app state
// `critical_unblock_low`) has been synced at least once: WhatsApp computes a
// status's audience from that list, so publishing earlier would reach nobody.
type whatsmeowSession struct {
	engine   *Whatsmeow
	instance string
	hooks    Hooks
	log      *slog.Logger
	// owned is OpenParams.Owned: the lease check of a fenced session.
	owned func() bool

	// ctx lives as long as the session; Close cancels it, which stops the
	// reconnect loop and the QR consumer. wg counts those goroutines.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	dev    *wastore.Device
	cli    waClient
	state  State
	jid    string
	closed bool
	// changed is closed and replaced on every state change, waking waiters.
	changed chan struct{}
	// dialing is true while the reconnect loop runs.
	dialing bool
	// pairCancel ends the running QR pairing, whose consumer closes
	// pairDone when it returns; both nil when no pairing runs.
	pairCancel context.CancelFunc
	pairDone   chan struct{}

	// events queues whatsmeow's events for the event goroutine.
	events *eventQueue
	// lastAudience is the recipient count of the last audience read (-1:
	// none yet); it sizes the send deadline.
	lastAudience int
	// syncTimer fires the contacts check of a login whose contacts were
	// not synced yet.
	syncTimer *time.Timer
	// outdatedRetried is set once a client_outdated refusal was answered by
	// a version refresh and a redial; a successful login clears it.
	outdatedRetried bool
}

func newWhatsmeowSession(e *Whatsmeow, p OpenParams) *whatsmeowSession {
	ctx, cancel := context.WithCancel(context.Background())
	s := &whatsmeowSession{
		engine:   e,
		instance: p.Instance,
		hooks:    p.Hooks,
		log:      e.log.With("instance", p.Instance, "engine", EngineWhatsmeow),
		owned:    p.Owned,
		ctx:      ctx,
		cancel:   cancel,
		state:    StateDisconnected,
		changed:  make(chan struct{}),

		events:       newEventQueue(),
		lastAudience: -1,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.events.run(ctx, s.handleEvent)
	}()
	return s
}

// setClient makes dev and cli the session's device and client.
func (s *whatsmeowSession) setClient(dev *wastore.Device, cli waClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dev, s.cli = dev, cli
	s.jid = ""
	if dev.ID != nil {
		s.jid = dev.ID.String()
	}
}

func (s *whatsmeowSession) holds(cli waClient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cli == cli
}

func (s *whatsmeowSession) client() waClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cli
}

// State implements [Session].
func (s *whatsmeowSession) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// JID implements [Session]: the linked device's JID, empty when not linked.
func (s *whatsmeowSession) JID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jid
}

// report records a state change and tells the hooks about it.
func (s *whatsmeowSession) report(st State, reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
	jid := s.jid
	s.mu.Unlock()
	if s.hooks.OnState != nil {
		s.hooks.OnState(StateChange{Instance: s.instance, State: st, JID: jid, Reason: reason, At: s.engine.now()})
	}
}

// eventState maps a whatsmeow event to the state it puts a session in and
// the reason reported with it; ok is false for events that change nothing.
// [events.Connected] maps to connected; the session holds it at connecting
// until the first app-state sync (see [whatsmeowSession.handleEvent]).
func eventState(evt any) (st State, reason string, ok bool) {
	switch e := evt.(type) {
	case *events.Connected:
		return StateConnected, "connected", true
	case *events.AppStateSyncComplete:
		if e.Name != appstate.WAPatchCriticalUnblockLow {
			return "", "", false
		}
		return StateConnected, "contacts synced", true
	case *events.PairSuccess:
		return StateConnecting, "paired; logging in", true
	case *events.PairError:
		return StateDisconnected, fmt.Sprintf("pairing failed: %v", e.Error), true
	case *events.QRScannedWithoutMultidevice:
		return StateConnecting, "QR code scanned by a phone without multi-device; enable it and scan again", true
	case *events.Disconnected:
		return StateDisconnected, "connection closed; reconnecting", true
	case *events.KeepAliveTimeout:
		return StateConnecting, fmt.Sprintf("keep-alive timeout (%d errors)", e.ErrorCount), true
	case *events.KeepAliveRestored:
		return StateConnected, "keep-alive restored", true
	case *events.LoggedOut:
		return StateLoggedOut, "logged out: " + e.PermanentDisconnectDescription(), true
	case *events.ConnectFailure:
		if e.Reason.IsLoggedOut() {
			return StateLoggedOut, e.PermanentDisconnectDescription(), true
		}
		return StateDisconnected, e.PermanentDisconnectDescription(), true
	case *events.StreamReplaced:
		return StateDisconnected, e.PermanentDisconnectDescription(), true
	case *events.TemporaryBan:
		return StateDisconnected, e.PermanentDisconnectDescription(), true
	case *events.ClientOutdated:
		return StateDisconnected, ReasonClientOutdated, true
	case *events.CATRefreshError:
		return StateDisconnected, e.PermanentDisconnectDescription(), true
	case *events.StreamError:
		return StateDisconnected, "stream error " + e.Code, true
	}
	return "", "", false
}

// handleEvent applies one whatsmeow event (or one of the session's own
// queued checks) to the session. It runs on the session's event goroutine,
// never on whatsmeow's loops, so it may wait on the database and the hooks.
// To react to another whatsmeow event, add a case here (and to [eventState]
// when it changes the state).
func (s *whatsmeowSession) handleEvent(evt any) {
	if r, ok := evt.(*events.Receipt); ok {
		if v, ok := statusReceipt(s.instance, r); ok && s.hooks.OnReceipt != nil {
			s.hooks.OnReceipt(v)
		}
		return
	}
	switch e := evt.(type) {
	case contactsCheck:
		s.checkContacts(e)
		return
	case historySyncJob:
		s.startHistorySync(e)
		return
	}
	st, reason, ok := eventState(evt)
	if !ok {
		return
	}
	switch e := evt.(type) {
	case *events.ClientOutdated:
		defer s.retryOutdated() // after reporting client_outdated
	case *events.PairSuccess:
		s.mu.Lock()
		s.jid = e.ID.String()
		s.mu.Unlock()
		if s.hooks.OnPaired != nil {
			s.hooks.OnPaired(s.instance, e.ID.String())
		}
	case *events.Connected:
		s.mu.Lock()
		s.outdatedRetried = false
		s.mu.Unlock()
		if !s.contactsSynced() {
			st, reason = StateConnecting, "logged in; waiting for the first app-state sync"
			s.scheduleContactsCheck()
		}
	case *events.AppStateSyncComplete, *events.KeepAliveRestored:
		// Only a logged-in session becomes connected by these.
		if cur := s.State(); cur != StateConnecting && cur != StateConnected {
			return
		}
		if _, ok := e.(*events.KeepAliveRestored); ok && !s.contactsSynced() {
			st, reason = StateConnecting, "keep-alive restored; waiting for the first app-state sync"
		}
	case *events.LoggedOut:
		// whatsmeow has deleted the device; a fresh one can be linked.
		s.resetDevice()
	case *events.ConnectFailure:
		if e.Reason.IsLoggedOut() {
			s.resetDevice()
		}
	}
	s.report(st, reason)
}

// contactsSynced reports whether the device has completed a full sync of the
// contact list at least once (its stored app-state version is above zero).
func (s *whatsmeowSession) contactsSynced() bool {
	s.mu.Lock()
	dev := s.dev
	s.mu.Unlock()
	if dev == nil || dev.AppState == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	v, _, err := dev.AppState.GetAppStateVersion(ctx, string(appstate.WAPatchCriticalUnblockLow))
	if err != nil {
		s.log.Warn("read app-state version", "err", err)
		return false
	}
	return v > 0
}

// resetDevice gives the session a fresh, unlinked device and client, after
// the old device was removed. The old client is disconnected; its late
// events are dropped (see [Whatsmeow.newClient]).
//
// NOTE: this runs inside whatsmeow's event dispatch, which holds the old
// client's handler lock, so the old client is only touched from a goroutine.
func (s *whatsmeowSession) resetDevice() {
	s.mu.Lock()
	old := s.cli
	closed := s.closed
	s.mu.Unlock()
	if old != nil {
		go old.Disconnect()
	}
	if closed {
		return
	}
	dev := s.engine.container.NewDevice()
	s.setClient(dev, s.engine.newClient(dev, s))
}

// startReconnect dials the stored session in the background until it
// connects or the session closes; a running loop is not started twice.
func (s *whatsmeowSession) startReconnect() {
	s.mu.Lock()
	if s.dialing || s.closed {
		s.mu.Unlock()
		return
	}
	s.dialing = true
	s.wg.Add(1)
	s.mu.Unlock()
	s.report(StateConnecting, "connecting stored session")
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.dialing = false
			s.mu.Unlock()
		}()
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				t := time.NewTimer(reconnectDelay(attempt))
				select {
				case <-s.ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			s.mu.Lock()
			cli, linked := s.cli, s.jid != ""
			s.mu.Unlock()
			if !linked {
				// Logged out meanwhile: an unlinked device would dial for a QR code.
				return
			}
			s.engine.awaitVersion(s.ctx)
			err := cli.ConnectContext(s.ctx)
			if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) {
				return
			}
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("dial WhatsApp failed; retrying", "attempt", attempt+1, "err", err)
			s.report(StateConnecting, "dial failed, retrying: "+err.Error())
		}
	}()
}

// reconnectDelay is the delay before the attempt-th retry: 1 s doubling to
// [ReconnectMaxDelay], with ±20 % jitter.
func reconnectDelay(attempt int) time.Duration {
	return backoff.Exponential(time.Second, ReconnectMaxDelay, attempt, rand.Float64())
}

// Reconnect implements [Session]: a disconnected linked session starts
// dialling in the background; it is a no-op when the session is connected or
// already connecting. [ErrNotPaired] when no device is linked.
func (s *whatsmeowSession) Reconnect(ctx context.Context) error {
	if s.JID() == "" {
		return ErrNotPaired
	}
	if s.State() == StateDisconnected {
		s.startReconnect()
	}
	return nil
}

// Logout implements [Session]. A logged-in session asks WhatsApp to unlink
// the device; if that request fails, or the session is offline, the device
// is removed from the local store only (the phone drops it when it next
// checks). Either way the session reports loggedout and holds a fresh device
// that Connect can link again. [ErrNotPaired] when no device is linked.
func (s *whatsmeowSession) Logout(ctx context.Context) error {
	s.mu.Lock()
	cli, dev, linked := s.cli, s.dev, s.jid != ""
	s.mu.Unlock()
	if !linked {
		// Abandon a pairing under way, if any.
		s.stopPairing()
		cli.Disconnect()
		return ErrNotPaired
	}
	remote := false
	if cli.IsLoggedIn() {
		if err := cli.Logout(ctx); err != nil {
			s.log.Warn("unlink request failed; removing the device locally", "err", err)
		} else {
			remote = true
		}
	}
	if !remote {
		cli.Disconnect()
		if dev.ID != nil {
			if err := dev.Delete(ctx); err != nil {
				return fmt.Errorf("delete device: %w", err)
			}
		}
	}
	s.resetDevice()
	s.report(StateLoggedOut, "logged out")
	return nil
}

// Close implements [Session]: it disconnects without unlinking, stops the
// session's goroutines and waits for them. A second Close is harmless.
func (s *whatsmeowSession) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cli := s.cli
	if s.syncTimer != nil {
		s.syncTimer.Stop()
	}
	s.mu.Unlock()
	s.cancel()
	cli.Disconnect()
	s.wg.Wait()
	return nil
}
