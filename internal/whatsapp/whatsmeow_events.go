package whatsapp

import (
	"context"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"
)

// State reasons with a fixed meaning, reported in instance.state events and
// counted in statusflow_instance_state_reasons_total; others are words.
const (
	// ReasonClientOutdated: WhatsApp refused the connection as coming from an
	// outdated client (connect failure 405). statusflow fetches WhatsApp
	// Web's current version and retries once; if that fails too, update
	// statusflow (README "Keeping up with WhatsApp") or set STATUSFLOW_WA_VERSION.
	ReasonClientOutdated = "client_outdated"
	// ReasonSyncingContacts: logged in, but the contact list (which the
	// audience of a status is computed from) has not been synced within
	// [ContactsSyncGrace]; a full resync was requested.
	ReasonSyncingContacts = "syncing_contacts"
)

// ContactsSyncGrace is how long a logged-in session waits for its first
// contact sync before it checks the privacy mode and asks for a full resync.
const ContactsSyncGrace = time.Minute

// eventQueue hands a session's whatsmeow events to one goroutine, in order.
// whatsmeow calls event handlers synchronously from its own loops (receipts,
// the socket's read loop): a handler that waits on the database or on event
// publishing (the state hooks write the instance row and emit
// instance.state) stalls the connection. Add appends and returns at once.
type eventQueue struct {
	mu     sync.Mutex
	items  []any
	wake   chan struct{}
	closed bool
}

func newEventQueue() *eventQueue { return &eventQueue{wake: make(chan struct{}, 1)} }

// Add queues evt; it never blocks.
func (q *eventQueue) Add(evt any) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, evt)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run passes queued events to handle, in order, until ctx ends.
func (q *eventQueue) run(ctx context.Context, handle func(any)) {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, evt := range items {
			handle(evt)
		}
		select {
		case <-ctx.Done():
			q.mu.Lock()
			q.closed = true
			q.mu.Unlock()
			return
		case <-q.wake:
		}
	}
}

// contactsCheck is queued [ContactsSyncGrace] after a login whose contacts
// were not synced yet.
type contactsCheck struct{ cli waClient }

// versionRetry is queued when WhatsApp refused the client as outdated.
type versionRetry struct{}

// checkContacts runs when the first contact sync is late. A session still
// waiting for it either needs no contacts (the "only share with" mode: its
// list is the audience) and becomes connected, or reports
// [ReasonSyncingContacts] and asks WhatsApp for a full resync of the
// contact list (whatsmeow FetchAppState with fullSync), whose
// AppStateSyncComplete event then connects it.
func (s *whatsmeowSession) checkContacts(c contactsCheck) {
	if !s.holds(c.cli) || s.State() != StateConnecting || s.contactsSynced() {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if priv, err := c.cli.GetStatusPrivacy(ctx); err == nil && len(priv) > 0 && priv[0].Type == types.StatusPrivacyTypeWhitelist {
		s.report(StateConnected, "contacts not synced; not needed: status privacy is \"only share with\"")
		return
	}
	s.report(StateConnecting, ReasonSyncingContacts)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
		defer cancel()
		if err := c.cli.FetchAppState(ctx, appstate.WAPatchCriticalUnblockLow, true, false); err != nil {
			s.log.Warn("full contact resync failed", "err", err)
		}
	}()
}

// scheduleContactsCheck queues a [contactsCheck] after [ContactsSyncGrace].
func (s *whatsmeowSession) scheduleContactsCheck() {
	cli := s.client()
	s.mu.Lock()
	if s.syncTimer != nil {
		s.syncTimer.Stop()
	}
	s.syncTimer = time.AfterFunc(s.engine.contactsGrace, func() { s.events.Add(contactsCheck{cli: cli}) })
	s.mu.Unlock()
}

// retryOutdated refreshes the advertised version and dials once more after
// WhatsApp refused the client as outdated. Only one retry per refusal run:
// a second refusal stays disconnected with [ReasonClientOutdated].
func (s *whatsmeowSession) retryOutdated() {
	s.mu.Lock()
	if s.outdatedRetried || s.closed {
		s.mu.Unlock()
		return
	}
	s.outdatedRetried = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if k := s.engine.version; k != nil {
			k.Refresh(s.ctx)
		}
		if s.ctx.Err() == nil && s.JID() != "" {
			s.startReconnect()
		}
	}()
}
