package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	signallog "go.mau.fi/libsignal/logger"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/statusflow/statusflow/internal/store"
)

// Timing of the whatsmeow engine.
const (
	// SyncTimeoutDefault bounds how long SendStatus, RevokeStatus and Upload
	// wait for a connecting session to log in and finish its first app-state
	// sync before they give up with [ErrNotConnected].
	SyncTimeoutDefault = 30 * time.Second
	// PairTimeoutDefault bounds how long Connect waits for WhatsApp's first
	// QR code after dialling.
	PairTimeoutDefault = 30 * time.Second
	// ReconnectMaxDelay caps the backoff between attempts to dial a stored
	// session; attempts start at once and double from one second.
	ReconnectMaxDelay = time.Minute
)

// PairClientDisplayName is how a device linked with a pairing code shows up
// in the phone's "Linked devices"; WhatsApp accepts only `Browser (OS)` names.
const PairClientDisplayName = "Chrome (Linux)"

// Whatsmeow is the engine that talks to WhatsApp through go.mau.fi/whatsmeow.
// Device keys and sessions live in whatsmeow's sqlstore tables in
// statusflow's own database, so a linked instance reconnects by itself after
// a restart.
type Whatsmeow struct {
	container *sqlstore.Container
	log       *slog.Logger
	waLog     waLog.Logger
	now       func() time.Time

	// syncTimeout and pairTimeout default to the constants above.
	syncTimeout time.Duration
	pairTimeout time.Duration
	// httpClient, when set, carries the websocket and media traffic of every
	// client (tests point it at a loopback listener).
	httpClient *http.Client
}

// NewWhatsmeow returns the whatsmeow engine on st's database, creating or
// upgrading whatsmeow's own tables (`whatsmeow_*`). On SQLite the
// connection must have foreign keys on, as store.Open's DSN does.
func NewWhatsmeow(st *store.Store, log *slog.Logger) (*Whatsmeow, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setupSignalLogger(log)
	wl := newSlogWALogger(log.With("engine", EngineWhatsmeow))
	c := sqlstore.NewWithDB(st.DB, string(st.Dialect), wl.Sub("Database"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("whatsmeow store: %w", err)
	}
	return &Whatsmeow{
		container:   c,
		log:         log,
		waLog:       wl,
		now:         func() time.Time { return time.Now().UTC() },
		syncTimeout: SyncTimeoutDefault,
		pairTimeout: PairTimeoutDefault,
	}, nil
}

// Name implements [Engine].
func (*Whatsmeow) Name() string { return EngineWhatsmeow }

// Open implements [Engine]. With params.DeviceJID set it loads that device
// from the store and starts dialling in the background (state connecting),
// retrying with backoff until it connects or the session is closed; whatsmeow
// then reconnects by itself after later drops. A DeviceJID the store no
// longer has opens a fresh session in state loggedout. Without DeviceJID the
// session holds a fresh device and stays disconnected until Connect.
func (e *Whatsmeow) Open(ctx context.Context, p OpenParams) (Session, error) {
	var dev *wastore.Device
	lost := false
	if p.DeviceJID != "" {
		jid, err := types.ParseJID(p.DeviceJID)
		if err != nil {
			return nil, fmt.Errorf("instance %s: device %q: %w", p.Instance, p.DeviceJID, err)
		}
		dev, err = e.container.GetDevice(ctx, jid)
		if err != nil {
			return nil, fmt.Errorf("instance %s: load device: %w", p.Instance, err)
		}
		lost = dev == nil
	}
	if dev == nil {
		dev = e.container.NewDevice()
	}
	s := newWhatsmeowSession(e, p)
	s.setClient(dev, e.newClient(dev, s))
	switch {
	case lost:
		s.log.Warn("stored device is gone from the whatsmeow store; the instance must be linked again", "device", p.DeviceJID)
		s.report(StateLoggedOut, "device not found in store")
	case dev.ID != nil:
		s.startReconnect()
	}
	return s, nil
}

// newClient builds the whatsmeow client of a device and routes its events
// to s. Events of a client that s no longer holds are dropped.
func (e *Whatsmeow) newClient(dev *wastore.Device, s *whatsmeowSession) *whatsmeow.Client {
	cli := whatsmeow.NewClient(dev, e.waLog.Sub("Client").Sub(s.instance))
	// Our own loop dials stored sessions; whatsmeow reconnects after drops.
	cli.EnableAutoReconnect = true
	cli.InitialAutoReconnect = false
	if e.httpClient != nil {
		cli.SetWebsocketHTTPClient(e.httpClient)
		cli.SetPreLoginHTTPClient(e.httpClient)
		cli.SetMediaHTTPClient(e.httpClient)
	}
	cli.AddEventHandler(func(evt any) {
		if s.holds(cli) {
			s.handleEvent(evt)
		}
	})
	return cli
}

// waClient is what a session calls on its [*whatsmeow.Client]; tests
// substitute a recorder to check the exact calls up to the network edge.
type waClient interface {
	ConnectContext(ctx context.Context) error
	Disconnect()
	IsLoggedIn() bool
	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	Logout(ctx context.Context) error
	UploadReader(ctx context.Context, plaintext io.Reader, tempFile io.ReadWriteSeeker, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	BuildRevoke(chat, sender types.JID, id types.MessageID) *waE2E.Message
}

var _ waClient = (*whatsmeow.Client)(nil)

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
}

func newWhatsmeowSession(e *Whatsmeow, p OpenParams) *whatsmeowSession {
	ctx, cancel := context.WithCancel(context.Background())
	return &whatsmeowSession{
		engine:   e,
		instance: p.Instance,
		hooks:    p.Hooks,
		log:      e.log.With("instance", p.Instance, "engine", EngineWhatsmeow),
		ctx:      ctx,
		cancel:   cancel,
		state:    StateDisconnected,
		changed:  make(chan struct{}),
	}
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
		return StateDisconnected, e.PermanentDisconnectDescription(), true
	case *events.CATRefreshError:
		return StateDisconnected, e.PermanentDisconnectDescription(), true
	case *events.StreamError:
		return StateDisconnected, "stream error " + e.Code, true
	}
	return "", "", false
}

// handleEvent applies one whatsmeow event to the session.
func (s *whatsmeowSession) handleEvent(evt any) {
	st, reason, ok := eventState(evt)
	if !ok {
		return
	}
	switch e := evt.(type) {
	case *events.PairSuccess:
		s.mu.Lock()
		s.jid = e.ID.String()
		s.mu.Unlock()
		if s.hooks.OnPaired != nil {
			s.hooks.OnPaired(s.instance, e.ID.String())
		}
	case *events.Connected:
		if !s.contactsSynced() {
			st, reason = StateConnecting, "logged in; waiting for the first app-state sync"
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
				t := time.NewTimer(backoff(attempt))
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

// backoff is the delay before the attempt-th retry: 1 s doubling to
// [ReconnectMaxDelay], with ±20 % jitter.
func backoff(attempt int) time.Duration {
	d := ReconnectMaxDelay
	if attempt < 7 {
		d = min(time.Second<<(attempt-1), ReconnectMaxDelay)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Connect implements [Session]. An unlinked session dials WhatsApp and
// returns the first QR code (phone empty) or a pairing code for phone; a
// background goroutine keeps reading the QR channel and reports later codes,
// success and expiry as state changes. A linked session returns its state,
// starting to reconnect when it is not connected.
func (s *whatsmeowSession) Connect(ctx context.Context, phone string) (*Pairing, error) {
	s.mu.Lock()
	linked := s.jid != ""
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrNotConnected
	}
	if linked {
		switch s.State() {
		case StateConnected:
			return &Pairing{State: StateConnected}, nil
		case StateDisconnected:
			s.startReconnect()
		}
		return &Pairing{State: s.State()}, nil
	}
	// A pairing already under way starts over with a fresh QR channel.
	s.stopPairing()
	cli := s.client()
	pairCtx, pairCancel := context.WithCancel(s.ctx)
	qr, err := cli.GetQRChannel(pairCtx)
	if err != nil {
		pairCancel()
		return nil, fmt.Errorf("QR channel: %w", err)
	}
	fail := func(err error) (*Pairing, error) {
		pairCancel()
		cli.Disconnect()
		return nil, err
	}
	if err := cli.ConnectContext(s.ctx); err != nil {
		return fail(fmt.Errorf("%w: dial WhatsApp: %v", ErrNotConnected, err))
	}
	wait, cancel := context.WithTimeout(ctx, s.engine.pairTimeout)
	defer cancel()
	var first whatsmeow.QRChannelItem
	select {
	case first = <-qr:
	case <-wait.Done():
		return fail(fmt.Errorf("%w: no QR code from WhatsApp: %v", ErrNotConnected, wait.Err()))
	}
	if first.Event != whatsmeow.QRChannelEventCode {
		return fail(fmt.Errorf("%w: %s", ErrNotConnected, qrItemReason(first)))
	}
	s.consumeQR(pairCtx, pairCancel, qr)
	p := &Pairing{State: StateConnecting}
	if phone == "" {
		p.QRCode = first.Code
		s.report(StateConnecting, "waiting for QR code scan")
		return p, nil
	}
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, PairClientDisplayName)
	if err != nil {
		s.stopPairing()
		cli.Disconnect()
		return nil, fmt.Errorf("pair phone: %w", err)
	}
	p.PairingCode = code
	s.report(StateConnecting, "waiting for pairing code entry")
	return p, nil
}

// consumeQR reads the rest of a QR channel in the background until it
// closes or pairCtx ends.
func (s *whatsmeowSession) consumeQR(pairCtx context.Context, pairCancel context.CancelFunc, qr <-chan whatsmeow.QRChannelItem) {
	done := make(chan struct{})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pairCancel()
		return
	}
	s.pairCancel, s.pairDone = pairCancel, done
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer close(done)
		defer pairCancel()
		for {
			var item whatsmeow.QRChannelItem
			var ok bool
			select {
			case item, ok = <-qr:
			case <-pairCtx.Done():
				return
			}
			if !ok {
				return
			}
			switch item.Event {
			case whatsmeow.QRChannelEventCode:
				s.report(StateConnecting, "QR code refreshed")
			case whatsmeow.QRChannelSuccess.Event:
				// PairSuccess reports the state and the JID.
			default:
				s.report(StateDisconnected, qrItemReason(item))
			}
		}
	}()
}

// stopPairing ends a running QR pairing and waits for its consumer.
func (s *whatsmeowSession) stopPairing() {
	s.mu.Lock()
	cancel, done := s.pairCancel, s.pairDone
	s.pairCancel, s.pairDone = nil, nil
	cli := s.cli
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	cli.Disconnect()
}

func qrItemReason(item whatsmeow.QRChannelItem) string {
	switch item.Event {
	case whatsmeow.QRChannelTimeout.Event:
		return "QR code expired"
	case whatsmeow.QRChannelEventError:
		return fmt.Sprintf("pairing failed: %v", item.Error)
	case whatsmeow.QRChannelClientOutdated.Event:
		return "client outdated"
	case whatsmeow.QRChannelErrUnexpectedEvent.Event:
		return "pairing interrupted by an unexpected connection event"
	}
	return "pairing ended: " + item.Event
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
	s.mu.Unlock()
	s.cancel()
	cli.Disconnect()
	s.wg.Wait()
	return nil
}

// ready waits until the session is connected (logged in and contacts
// synced). It returns at once with [ErrNotConnected] when the session is
// unlinked, disconnected or logged out (the error also matches
// [ErrNotPaired] when unlinked), and after the engine's sync timeout when a
// connecting session does not get there; ctx's error when ctx ends first.
func (s *whatsmeowSession) ready(ctx context.Context) (waClient, error) {
	timeout := time.NewTimer(s.engine.syncTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		st, ch, cli, closed, linked := s.state, s.changed, s.cli, s.closed, s.jid != ""
		s.mu.Unlock()
		switch {
		case closed:
			return nil, fmt.Errorf("%w: session closed", ErrNotConnected)
		case !linked:
			return nil, fmt.Errorf("%w: %w", ErrNotConnected, ErrNotPaired)
		case st == StateConnected:
			return cli, nil
		case st != StateConnecting:
			return nil, fmt.Errorf("%w: %s", ErrNotConnected, st)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, fmt.Errorf("%w: not logged in and synced within %s", ErrNotConnected, s.engine.syncTimeout)
		}
	}
}

// mediaType maps a [MediaKind] to whatsmeow's upload bucket.
func mediaType(kind MediaKind) (whatsmeow.MediaType, error) {
	switch kind {
	case MediaImage:
		return whatsmeow.MediaImage, nil
	case MediaVideo:
		return whatsmeow.MediaVideo, nil
	case MediaAudio:
		return whatsmeow.MediaAudio, nil
	}
	return "", fmt.Errorf("unknown media kind %q", kind)
}

// Upload implements [Session]: it waits for the session to be ready, then
// encrypts r through a temporary file and uploads it with whatsmeow.
func (s *whatsmeowSession) Upload(ctx context.Context, r io.ReadSeeker, size int64, kind MediaKind) (*Upload, error) {
	mt, err := mediaType(kind)
	if err != nil {
		return nil, err
	}
	cli, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind media: %w", err)
	}
	var body io.Reader = r
	if size > 0 {
		body = io.LimitReader(r, size)
	}
	resp, err := cli.UploadReader(ctx, body, nil, mt)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", kind, notConnected(err))
	}
	return &Upload{
		URL:           resp.URL,
		DirectPath:    resp.DirectPath,
		MediaKey:      resp.MediaKey,
		FileEncSHA256: resp.FileEncSHA256,
		FileSHA256:    resp.FileSHA256,
		FileLength:    resp.FileLength,
	}, nil
}

// SendStatus implements [Session]: it waits for the session to be ready and
// sends msg to status@broadcast with message id id.
func (s *whatsmeowSession) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	cli, err := s.ready(ctx)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := cli.SendMessage(ctx, types.StatusBroadcastJID, msg, whatsmeow.SendRequestExtra{ID: id})
	if err != nil {
		return time.Time{}, notConnected(err)
	}
	return resp.Timestamp.UTC(), nil
}

// RevokeStatus implements [Session]: it sends a revoke of this device's
// status id to status@broadcast.
func (s *whatsmeowSession) RevokeStatus(ctx context.Context, id string) (time.Time, error) {
	cli, err := s.ready(ctx)
	if err != nil {
		return time.Time{}, err
	}
	rev := cli.BuildRevoke(types.StatusBroadcastJID, types.EmptyJID, id)
	resp, err := cli.SendMessage(ctx, types.StatusBroadcastJID, rev)
	if err != nil {
		return time.Time{}, notConnected(err)
	}
	return resp.Timestamp.UTC(), nil
}

// notConnected wraps whatsmeow's connection errors in [ErrNotConnected].
func notConnected(err error) error {
	if errors.Is(err, whatsmeow.ErrNotConnected) || errors.Is(err, whatsmeow.ErrNotLoggedIn) {
		return fmt.Errorf("%w: %v", ErrNotConnected, err)
	}
	return err
}

// slogWALogger bridges whatsmeow's logger to slog; Sub adds to the module.
type slogWALogger struct {
	log    *slog.Logger
	module string
}

func newSlogWALogger(log *slog.Logger) waLog.Logger { return &slogWALogger{log: log} }

func (l *slogWALogger) Errorf(msg string, args ...any) { l.logf(slog.LevelError, msg, args) }
func (l *slogWALogger) Warnf(msg string, args ...any)  { l.logf(slog.LevelWarn, msg, args) }
func (l *slogWALogger) Infof(msg string, args ...any)  { l.logf(slog.LevelInfo, msg, args) }
func (l *slogWALogger) Debugf(msg string, args ...any) { l.logf(slog.LevelDebug, msg, args) }

func (l *slogWALogger) Sub(module string) waLog.Logger {
	if l.module != "" {
		module = l.module + "/" + module
	}
	return &slogWALogger{log: l.log, module: module}
}

func (l *slogWALogger) logf(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(msg, args...), "module", l.module)
}

var signalLoggerOnce sync.Once

// setupSignalLogger routes libsignal's package-global logger to slog, once
// per process and before any key is generated. Left unset, libsignal
// installs a default on first use, racily, that prints every debug line to
// stdout.
func setupSignalLogger(log *slog.Logger) {
	signalLoggerOnce.Do(func() {
		var l signallog.Loggable = signalSlog{log: log.With("module", "libsignal")}
		signallog.Setup(&l)
	})
}

// signalSlog is libsignal's [signallog.Loggable] on slog.
type signalSlog struct{ log *slog.Logger }

func (l signalSlog) Debug(caller, msg string)   { l.log.Debug(msg, "caller", caller) }
func (l signalSlog) Info(caller, msg string)    { l.log.Info(msg, "caller", caller) }
func (l signalSlog) Warning(caller, msg string) { l.log.Warn(msg, "caller", caller) }
func (l signalSlog) Error(caller, msg string)   { l.log.Error(msg, "caller", caller) }
func (signalSlog) Configure(string)             {}
