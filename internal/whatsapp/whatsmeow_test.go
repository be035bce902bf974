package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// waitTimeout bounds every wait in these tests; nothing here sleeps.
const waitTimeout = 10 * time.Second

func waitOrTimeout[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %s", waitTimeout)
		panic("unreachable")
	}
}

// sendCall is one SendMessage call as whatsmeow would receive it.
type sendCall struct {
	to    types.JID
	msg   *waE2E.Message
	extra []whatsmeow.SendRequestExtra
	// ctxErr and deadline are the send context's, at the call.
	ctxErr   error
	deadline time.Time
}

type uploadCall struct {
	data     []byte
	tempFile io.ReadWriteSeeker
	appInfo  whatsmeow.MediaType
}

type pairCall struct {
	phone       string
	push        bool
	clientType  whatsmeow.PairClientType
	displayName string
}

// fakeClient records what a session hands to whatsmeow and answers like a
// client that never reaches the network.
type fakeClient struct {
	mu          sync.Mutex
	connects    int
	disconnects int
	loggedIn    bool
	logouts     int
	sends       []sendCall
	uploads     []uploadCall
	pairs       []pairCall
	// qr is returned by GetQRChannel; firstQR is put on it by ConnectContext.
	qr      chan whatsmeow.QRChannelItem
	firstQR string

	sendResp   whatsmeow.SendResponse
	uploadResp whatsmeow.UploadResponse
	sent       chan sendCall
	// sendErr, when set, is what SendMessage returns with sendResp (as
	// whatsmeow does: its results are named, timings filled on error too).
	sendErr error
	// privacy and privacyErr answer GetStatusPrivacy.
	privacy    []types.StatusPrivacy
	privacyErr error
	// fetches records FetchAppState calls.
	fetches []appStateFetch
	// blobs answers Download, by direct path.
	blobs map[string][]byte
}

type appStateFetch struct {
	name                      appstate.WAPatchName
	fullSync, onlyIfNotSynced bool
}

func (f *fakeClient) GetStatusPrivacy(ctx context.Context) ([]types.StatusPrivacy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.privacy, f.privacyErr
}

func (f *fakeClient) FetchAppState(ctx context.Context, name appstate.WAPatchName, fullSync, onlyIfNotSynced bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches = append(f.fetches, appStateFetch{name, fullSync, onlyIfNotSynced})
	return nil
}

// Download returns the blob set in blobs for the media's direct path.
func (f *fakeClient) Download(ctx context.Context, msg whatsmeow.DownloadableMessage) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[msg.GetDirectPath()]
	if !ok {
		return nil, whatsmeow.ErrNoURLPresent
	}
	return b, nil
}

func newFakeClient() *fakeClient {
	return &fakeClient{
		sendResp: whatsmeow.SendResponse{Timestamp: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)},
		sent:     make(chan sendCall, 16),
		firstQR:  "2@qr-code-1",
	}
}

func (f *fakeClient) ConnectContext(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects++
	if f.qr != nil && f.firstQR != "" {
		f.qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: f.firstQR, Timeout: time.Minute}
	}
	return nil
}

func (f *fakeClient) Disconnect() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnects++
}

func (f *fakeClient) IsLoggedIn() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loggedIn
}

func (f *fakeClient) GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.qr = make(chan whatsmeow.QRChannelItem, 8)
	return f.qr, nil
}

func (f *fakeClient) PairPhone(ctx context.Context, phone string, push bool, ct whatsmeow.PairClientType, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pairs = append(f.pairs, pairCall{phone, push, ct, name})
	return "ABCD-EFGH", nil
}

func (f *fakeClient) Logout(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logouts++
	f.loggedIn = false
	return nil
}

func (f *fakeClient) UploadReader(ctx context.Context, r io.Reader, tempFile io.ReadWriteSeeker, mt whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return whatsmeow.UploadResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads = append(f.uploads, uploadCall{data, tempFile, mt})
	return f.uploadResp, nil
}

func (f *fakeClient) SendMessage(ctx context.Context, to types.JID, msg *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	dl, _ := ctx.Deadline()
	c := sendCall{to: to, msg: msg, extra: extra, ctxErr: ctx.Err(), deadline: dl}
	f.mu.Lock()
	f.sends = append(f.sends, c)
	resp, err := f.sendResp, f.sendErr
	f.mu.Unlock()
	f.sent <- c
	return resp, err
}

// BuildRevoke is whatsmeow's own: for the own device's messages it needs no client state.
func (f *fakeClient) BuildRevoke(chat, sender types.JID, id types.MessageID) *waE2E.Message {
	return (*whatsmeow.Client)(nil).BuildRevoke(chat, sender, id)
}

func (f *fakeClient) pushQR(item whatsmeow.QRChannelItem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.qr <- item
}

func (f *fakeClient) sendCalls() []sendCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sendCall(nil), f.sends...)
}

// stateRecorder collects what a session reports through its hooks.
type stateRecorder struct {
	mu      sync.Mutex
	changes []StateChange
	paired  []string
	qrs     []string
	ch      chan StateChange
}

func newStateRecorder() *stateRecorder { return &stateRecorder{ch: make(chan StateChange, 64)} }

func (r *stateRecorder) hooks() Hooks {
	return Hooks{
		OnState: func(c StateChange) {
			r.mu.Lock()
			r.changes = append(r.changes, c)
			r.mu.Unlock()
			r.ch <- c
		},
		OnPaired: func(instance, jid string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.paired = append(r.paired, instance+" "+jid)
		},
		OnQR: func(instance, code string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.qrs = append(r.qrs, code)
		},
	}
}

func (r *stateRecorder) last() StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changes) == 0 {
		return StateChange{}
	}
	return r.changes[len(r.changes)-1]
}

// waitFor waits for a reported change to state st and returns it.
func (r *stateRecorder) waitFor(t *testing.T, st State) StateChange {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case c := <-r.ch:
			if c.State == st {
				return c
			}
		case <-deadline:
			t.Fatalf("no %s state reported within %s; last: %+v", st, waitTimeout, r.last())
		}
	}
}

const testDeviceJID = "15551234567:7@s.whatsapp.net"

// newTestEngine returns an engine on a fresh database of dialect d.
func newTestEngine(t testing.TB, d store.Dialect) (*Whatsmeow, *store.Store) {
	t.Helper()
	st := storetest.New(t, d)
	e, err := NewWhatsmeow(st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewWhatsmeow on %s: %v", d, err)
	}
	return e, st
}

// storeLinkedDevice saves a device as pairing would: with its JID and
// account signature, in the engine's sqlstore.
func storeLinkedDevice(t testing.TB, e *Whatsmeow, jid string) *wastore.Device {
	t.Helper()
	dev := e.container.NewDevice()
	id := mustJID(jid)
	dev.ID = &id
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignature:    bytes.Repeat([]byte{1}, 64),
		AccountSignatureKey: bytes.Repeat([]byte{2}, 32),
		DeviceSignature:     bytes.Repeat([]byte{3}, 64),
	}
	if err := e.container.PutDevice(context.Background(), dev); err != nil {
		t.Fatalf("store device: %v", err)
	}
	return dev
}

type sessionBundle struct {
	engine *Whatsmeow
	cli    *fakeClient
	states *stateRecorder
	dev    *wastore.Device
}

type sessionOpts struct {
	// linked stores a device with a JID; synced also records a completed
	// contacts sync for it.
	linked, synced bool
}

// setupSession returns a session holding a fake client, on SQLite.
func setupSession(t *testing.T, o sessionOpts) (*whatsmeowSession, *sessionBundle) {
	t.Helper()
	e, _ := newTestEngine(t, store.SQLite)
	b := &sessionBundle{engine: e, cli: newFakeClient(), states: newStateRecorder()}
	if o.linked {
		b.dev = storeLinkedDevice(t, e, testDeviceJID)
		if o.synced {
			err := b.dev.AppState.PutAppStateVersion(context.Background(), string(appstate.WAPatchCriticalUnblockLow), 3, [128]byte{})
			if err != nil {
				t.Fatal(err)
			}
		}
	} else {
		b.dev = e.container.NewDevice()
	}
	s := newWhatsmeowSession(e, OpenParams{Instance: "sales", Hooks: b.states.hooks()})
	s.setClient(b.dev, b.cli)
	t.Cleanup(func() { s.Close() })
	return s, b
}

// setupConnected returns a linked, synced, logged-in session.
func setupConnected(t *testing.T) (*whatsmeowSession, *sessionBundle) {
	t.Helper()
	s, b := setupSession(t, sessionOpts{linked: true, synced: true})
	b.cli.loggedIn = true
	s.handleEvent(&events.Connected{})
	if s.State() != StateConnected {
		t.Fatalf("state = %s after Connected on a synced device", s.State())
	}
	return s, b
}

// TestWhatsmeow_DeviceName checks what a QR-linked device announces as its
// name in the phone's "Linked devices": whatsmeow puts DeviceProps.Os in the
// registration payload.
func TestWhatsmeow_DeviceName(t *testing.T) {
	t.Parallel()
	newTestEngine(t, store.SQLite)
	if got := wastore.DeviceProps.GetOs(); got != "statusflow" {
		t.Fatalf("DeviceProps.Os = %q, want statusflow", got)
	}
}

func TestWhatsmeow_EventState(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		given      any
		wantState  State
		wantReason string
		wantOK     bool
	}{
		{"Connected", &events.Connected{}, StateConnected, "connected", true},
		{"ContactsSynced", &events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow}, StateConnected, "contacts synced", true},
		{"OtherAppStateSynced", &events.AppStateSyncComplete{Name: appstate.WAPatchRegular}, "", "", false},
		{"Disconnected", &events.Disconnected{}, StateDisconnected, "connection closed; reconnecting", true},
		{"LoggedOut", &events.LoggedOut{Reason: events.ConnectFailureLoggedOut}, StateLoggedOut, "logged out: 401: logged out from another device", true},
		{"StreamReplaced", &events.StreamReplaced{}, StateDisconnected, "stream replaced", true},
		{"KeepAliveTimeout", &events.KeepAliveTimeout{ErrorCount: 2}, StateConnecting, "keep-alive timeout (2 errors)", true},
		{"KeepAliveRestored", &events.KeepAliveRestored{}, StateConnected, "keep-alive restored", true},
		{"PairSuccess", &events.PairSuccess{ID: mustJID(testDeviceJID)}, StateConnecting, "paired; logging in", true},
		{"PairError", &events.PairError{Error: errors.New("bad signature")}, StateDisconnected, "pairing failed: bad signature", true},
		{"ConnectFailure", &events.ConnectFailure{Reason: events.ConnectFailureBadUserAgent}, StateDisconnected, "connect failure: 409: client user agent was rejected", true},
		{"ConnectFailureLoggedOut", &events.ConnectFailure{Reason: events.ConnectFailureMainDeviceGone}, StateLoggedOut, "connect failure: 403: primary device was logged out", true},
		{"TemporaryBan", &events.TemporaryBan{Code: events.TempBanBlockedByUsers}, StateDisconnected, "temporarily banned: You've been temporarily banned: 102: too many people blocked you", true},
		{"ClientOutdated", &events.ClientOutdated{}, StateDisconnected, ReasonClientOutdated, true},
		{"StreamError", &events.StreamError{Code: "500"}, StateDisconnected, "stream error 500", true},
		{"Message", &events.Message{}, "", "", false},
		{"QR", &events.QR{Codes: []string{"a"}}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, reason, ok := eventState(tt.given)
			if st != tt.wantState || reason != tt.wantReason || ok != tt.wantOK {
				t.Fatalf("eventState(%T) = (%q, %q, %v), want (%q, %q, %v)", tt.given, st, reason, ok, tt.wantState, tt.wantReason, tt.wantOK)
			}
		})
	}
}

func TestWhatsmeowSession_HandleEvent(t *testing.T) {
	t.Parallel()

	t.Run("ConnectedWithSyncedContacts", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true, synced: true})
		s.handleEvent(&events.Connected{})
		c := b.states.waitFor(t, StateConnected)
		if c.Instance != "sales" || c.JID != testDeviceJID || c.Reason != "connected" || c.At.IsZero() {
			t.Fatalf("change = %+v", c)
		}
	})

	t.Run("ConnectedWaitsForContactsSync", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true})
		s.handleEvent(&events.Connected{})
		if c := b.states.waitFor(t, StateConnecting); !strings.Contains(c.Reason, "app-state sync") {
			t.Fatalf("reason = %q", c.Reason)
		}
		s.handleEvent(&events.AppStateSyncComplete{Name: appstate.WAPatchRegularHigh})
		if s.State() != StateConnecting {
			t.Fatalf("state = %s after an unrelated app-state sync", s.State())
		}
		s.handleEvent(&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow})
		if c := b.states.waitFor(t, StateConnected); c.Reason != "contacts synced" {
			t.Fatalf("reason = %q", c.Reason)
		}
	})

	t.Run("SyncCompleteWhileDisconnectedChangesNothing", func(t *testing.T) {
		t.Parallel()
		s, _ := setupSession(t, sessionOpts{linked: true})
		s.handleEvent(&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow})
		if s.State() != StateDisconnected {
			t.Fatalf("state = %s", s.State())
		}
	})

	t.Run("Disconnected", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		s.handleEvent(&events.Disconnected{})
		b.states.waitFor(t, StateDisconnected)
	})

	t.Run("StreamReplaced", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		s.handleEvent(&events.StreamReplaced{})
		if c := b.states.waitFor(t, StateDisconnected); c.Reason != "stream replaced" {
			t.Fatalf("reason = %q", c.Reason)
		}
	})

	t.Run("KeepAlive", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		s.handleEvent(&events.KeepAliveTimeout{ErrorCount: 1, LastSuccess: time.Now()})
		b.states.waitFor(t, StateConnecting)
		s.handleEvent(&events.KeepAliveRestored{})
		if c := b.states.waitFor(t, StateConnected); c.Reason != "keep-alive restored" {
			t.Fatalf("reason = %q", c.Reason)
		}
	})

	t.Run("LoggedOut", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		s.handleEvent(&events.LoggedOut{OnConnect: true, Reason: events.ConnectFailureLoggedOut})
		c := b.states.waitFor(t, StateLoggedOut)
		if c.JID != "" || s.JID() != "" {
			t.Fatalf("JID after logout: change %q, session %q", c.JID, s.JID())
		}
		if s.holds(b.cli) {
			t.Fatal("session kept the logged-out client; it must hold a fresh device to pair again")
		}
	})

	t.Run("PairSuccess", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{})
		if s.JID() != "" {
			t.Fatalf("fresh session has JID %q", s.JID())
		}
		s.handleEvent(&events.PairSuccess{ID: mustJID(testDeviceJID), Platform: "android"})
		c := b.states.waitFor(t, StateConnecting)
		if c.JID != testDeviceJID || s.JID() != testDeviceJID {
			t.Fatalf("JID: change %q, session %q", c.JID, s.JID())
		}
		b.states.mu.Lock()
		defer b.states.mu.Unlock()
		if len(b.states.paired) != 1 || b.states.paired[0] != "sales "+testDeviceJID {
			t.Fatalf("OnPaired calls = %q", b.states.paired)
		}
	})

	t.Run("EventsAfterCloseAreDropped", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true, synced: true})
		s.Close()
		s.handleEvent(&events.Connected{})
		if n := len(b.states.changes); n != 0 {
			t.Fatalf("%d changes reported after Close", n)
		}
	})
}

func TestWhatsmeowSession_SendStatus(t *testing.T) {
	t.Parallel()

	msg := func() *waE2E.Message {
		m, err := BuildText(TextStatus{Text: "hello", BackgroundColor: "#102030", Font: "serif"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("SendsToStatusBroadcast", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		ts, err := s.SendStatus(context.Background(), "3EB0AABBCCDD", msg())
		if err != nil {
			t.Fatalf("SendStatus: %v", err)
		}
		if !ts.Equal(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("timestamp = %v", ts)
		}
		calls := b.cli.sendCalls()
		if len(calls) != 1 {
			t.Fatalf("%d SendMessage calls", len(calls))
		}
		c := calls[0]
		if c.to != types.StatusBroadcastJID || c.to.String() != "status@broadcast" {
			t.Fatalf("sent to %s", c.to)
		}
		requireProtoEqual(t, textMessage("hello", 0xFF102030, waE2E.ExtendedTextMessage_SYSTEM_TEXT), c.msg)
		if len(c.extra) != 1 || c.extra[0].ID != "3EB0AABBCCDD" || c.extra[0].Peer || c.extra[0].Timeout != SendDeadlineBase || c.extra[0].MediaHandle != "" {
			t.Fatalf("extra = %+v", c.extra)
		}
	})

	t.Run("WaitsForContactsSync", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true})
		b.cli.loggedIn = true
		s.handleEvent(&events.Connected{})
		b.states.waitFor(t, StateConnecting)

		type result struct {
			ts  time.Time
			err error
		}
		done := make(chan result, 1)
		go func() {
			ts, err := s.SendStatus(context.Background(), "3EB0WAIT", msg())
			done <- result{ts, err}
		}()
		// Unrelated events do not release the send.
		s.handleEvent(&events.AppStateSyncComplete{Name: appstate.WAPatchRegular})
		s.handleEvent(&events.KeepAliveRestored{})
		select {
		case c := <-b.cli.sent:
			t.Fatalf("sent %+v before the contacts were synced", c)
		case r := <-done:
			t.Fatalf("SendStatus returned %+v before the contacts were synced", r)
		default:
		}
		s.handleEvent(&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow})
		r := waitOrTimeout(t, done)
		if r.err != nil {
			t.Fatalf("SendStatus: %v", r.err)
		}
		if c := waitOrTimeout(t, b.cli.sent); c.extra[0].ID != "3EB0WAIT" {
			t.Fatalf("extra = %+v", c.extra)
		}
	})

	t.Run("NotConnected", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true, synced: true})
		_, err := s.SendStatus(context.Background(), "3EB0", msg())
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("err = %v, want ErrNotConnected", err)
		}
		if n := len(b.cli.sendCalls()); n != 0 {
			t.Fatalf("%d sends", n)
		}
	})

	t.Run("SyncNeverArrives", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true})
		b.engine.syncTimeout = 50 * time.Millisecond
		s.handleEvent(&events.Connected{})
		_, err := s.SendStatus(context.Background(), "3EB0", msg())
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("err = %v, want ErrNotConnected", err)
		}
		if n := len(b.cli.sendCalls()); n != 0 {
			t.Fatalf("%d sends", n)
		}
	})

	t.Run("ContextEndsFirst", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true})
		s.handleEvent(&events.Connected{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.SendStatus(ctx, "3EB0", msg())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := len(b.cli.sendCalls()); n != 0 {
			t.Fatalf("%d sends", n)
		}
	})

	t.Run("DisconnectWhileWaiting", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true})
		s.handleEvent(&events.Connected{})
		done := make(chan error, 1)
		go func() {
			_, err := s.SendStatus(context.Background(), "3EB0", msg())
			done <- err
		}()
		s.handleEvent(&events.StreamReplaced{})
		if err := waitOrTimeout(t, done); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("err = %v, want ErrNotConnected", err)
		}
		if n := len(b.cli.sendCalls()); n != 0 {
			t.Fatalf("%d sends", n)
		}
	})
}

func TestWhatsmeowSession_RevokeStatus(t *testing.T) {
	t.Parallel()

	t.Run("SendsRevokeToStatusBroadcast", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		ts, err := s.RevokeStatus(context.Background(), "3EB0REVOKE")
		if err != nil {
			t.Fatalf("RevokeStatus: %v", err)
		}
		if ts.IsZero() {
			t.Fatal("zero timestamp")
		}
		calls := b.cli.sendCalls()
		if len(calls) != 1 {
			t.Fatalf("%d SendMessage calls", len(calls))
		}
		if calls[0].to != types.StatusBroadcastJID {
			t.Fatalf("sent to %s", calls[0].to)
		}
		want := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum(),
			Key: &waCommon.MessageKey{
				RemoteJID: proto.String("status@broadcast"),
				FromMe:    proto.Bool(true),
				ID:        proto.String("3EB0REVOKE"),
			},
		}}
		requireProtoEqual(t, want, calls[0].msg)
		if len(calls[0].extra) != 0 {
			t.Fatalf("extra = %+v", calls[0].extra)
		}
	})

	t.Run("NotConnected", func(t *testing.T) {
		t.Parallel()
		s, _ := setupSession(t, sessionOpts{})
		if _, err := s.RevokeStatus(context.Background(), "3EB0"); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("err = %v, want ErrNotConnected", err)
		}
	})
}

func TestWhatsmeowSession_Upload(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		kind MediaKind
		want whatsmeow.MediaType
	}{
		{MediaImage, whatsmeow.MediaImage},
		{MediaVideo, whatsmeow.MediaVideo},
		{MediaAudio, whatsmeow.MediaAudio},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			s, b := setupConnected(t)
			b.cli.uploadResp = whatsmeow.UploadResponse{
				URL:           "https://mmg.whatsapp.net/v/t62/x.enc?ccb=1",
				DirectPath:    "/v/t62/x.enc?ccb=1",
				Handle:        "ignored",
				ObjectID:      "ignored",
				MediaKey:      []byte("media-key"),
				FileEncSHA256: []byte("enc-sha"),
				FileSHA256:    []byte("sha"),
				FileLength:    11,
			}
			r := strings.NewReader("media bytes")
			r.Seek(5, io.SeekStart) // Upload rewinds
			before := time.Now().Unix()
			up, err := s.Upload(context.Background(), r, 11, tt.kind)
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if up.MediaKeyTimestamp < before || up.MediaKeyTimestamp > time.Now().Unix() {
				t.Fatalf("MediaKeyTimestamp = %d, want the upload's time (>= %d)", up.MediaKeyTimestamp, before)
			}
			want := &Upload{
				URL:           "https://mmg.whatsapp.net/v/t62/x.enc?ccb=1",
				DirectPath:    "/v/t62/x.enc?ccb=1",
				MediaKey:      []byte("media-key"),
				FileEncSHA256: []byte("enc-sha"),
				FileSHA256:    []byte("sha"),
				FileLength:    11,
			}
			if up.URL != want.URL || up.DirectPath != want.DirectPath || !bytes.Equal(up.MediaKey, want.MediaKey) ||
				!bytes.Equal(up.FileEncSHA256, want.FileEncSHA256) || !bytes.Equal(up.FileSHA256, want.FileSHA256) || up.FileLength != want.FileLength {
				t.Fatalf("upload = %+v, want %+v", up, want)
			}
			b.cli.mu.Lock()
			defer b.cli.mu.Unlock()
			if len(b.cli.uploads) != 1 {
				t.Fatalf("%d uploads", len(b.cli.uploads))
			}
			u := b.cli.uploads[0]
			if string(u.data) != "media bytes" || u.tempFile != nil || u.appInfo != tt.want {
				t.Fatalf("UploadReader got data %q, temp file %v, media type %q", u.data, u.tempFile, u.appInfo)
			}
		})
	}

	t.Run("UnknownKind", func(t *testing.T) {
		t.Parallel()
		s, _ := setupConnected(t)
		if _, err := s.Upload(context.Background(), strings.NewReader("x"), 1, "sticker"); err == nil {
			t.Fatal("no error for an unknown kind")
		}
	})

	t.Run("NotConnected", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true})
		if _, err := s.Upload(context.Background(), strings.NewReader("x"), 1, MediaImage); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("err = %v, want ErrNotConnected", err)
		}
		if len(b.cli.uploads) != 0 {
			t.Fatal("uploaded while disconnected")
		}
	})
}

func TestWhatsmeowSession_Connect(t *testing.T) {
	t.Parallel()

	t.Run("QRCode", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{})
		p, err := s.Connect(context.Background(), "")
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if *p != (Pairing{State: StateConnecting, QRCode: "2@qr-code-1"}) {
			t.Fatalf("pairing = %+v", p)
		}
		if b.cli.connects != 1 {
			t.Fatalf("%d dials", b.cli.connects)
		}
		b.states.waitFor(t, StateConnecting)
		b.cli.pushQR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@qr-code-2"})
		if c := b.states.waitFor(t, StateConnecting); c.Reason != "QR code refreshed" {
			t.Fatalf("reason = %q", c.Reason)
		}
		// Every code, the first and the rotated one, reaches OnQR (the
		// console's live QR image).
		b.states.mu.Lock()
		qrs := strings.Join(b.states.qrs, " ")
		b.states.mu.Unlock()
		if qrs != "2@qr-code-1 2@qr-code-2" {
			t.Fatalf("OnQR got %q", qrs)
		}
		b.cli.pushQR(whatsmeow.QRChannelTimeout)
		if c := b.states.waitFor(t, StateDisconnected); c.Reason != "QR code expired" {
			t.Fatalf("reason = %q", c.Reason)
		}
	})

	t.Run("QRCodeAgainRestartsPairing", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{})
		if _, err := s.Connect(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		p, err := s.Connect(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if p.QRCode == "" || b.cli.connects != 2 || b.cli.disconnects < 1 {
			t.Fatalf("pairing %+v after %d dials, %d disconnects", p, b.cli.connects, b.cli.disconnects)
		}
	})

	t.Run("PairingCode", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{})
		p, err := s.Connect(context.Background(), "+1 555 123 4567")
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if *p != (Pairing{State: StateConnecting, PairingCode: "ABCD-EFGH"}) {
			t.Fatalf("pairing = %+v", p)
		}
		b.cli.mu.Lock()
		defer b.cli.mu.Unlock()
		want := []pairCall{{"+1 555 123 4567", true, whatsmeow.PairClientChrome, "Chrome (Linux)"}}
		if len(b.cli.pairs) != 1 || b.cli.pairs[0] != want[0] {
			t.Fatalf("PairPhone calls = %+v, want %+v", b.cli.pairs, want)
		}
	})

	t.Run("PairSuccessThenSync", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{})
		if _, err := s.Connect(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		b.cli.pushQR(whatsmeow.QRChannelSuccess)
		s.handleEvent(&events.PairSuccess{ID: mustJID(testDeviceJID)})
		s.handleEvent(&events.Connected{})
		if s.State() != StateConnecting {
			t.Fatalf("state = %s before the first sync", s.State())
		}
		s.handleEvent(&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow})
		b.states.waitFor(t, StateConnected)
		if s.JID() != testDeviceJID {
			t.Fatalf("JID = %q", s.JID())
		}
	})

	t.Run("AlreadyConnected", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		p, err := s.Connect(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if *p != (Pairing{State: StateConnected}) || b.cli.connects != 0 {
			t.Fatalf("pairing %+v after %d dials", p, b.cli.connects)
		}
	})

	t.Run("LinkedButOfflineReconnects", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true, synced: true})
		p, err := s.Connect(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if p.State != StateConnecting || p.QRCode != "" {
			t.Fatalf("pairing = %+v", p)
		}
		b.states.waitFor(t, StateConnecting)
	})
}

func TestWhatsmeowSession_Logout(t *testing.T) {
	t.Parallel()

	t.Run("LoggedIn", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		if err := s.Logout(context.Background()); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		if b.cli.logouts != 1 {
			t.Fatalf("%d unlink requests", b.cli.logouts)
		}
		if c := b.states.waitFor(t, StateLoggedOut); c.JID != "" {
			t.Fatalf("change = %+v", c)
		}
		if s.JID() != "" || s.holds(b.cli) {
			t.Fatal("session still holds the old device")
		}
	})

	t.Run("OfflineDeletesStoredDevice", func(t *testing.T) {
		t.Parallel()
		s, b := setupSession(t, sessionOpts{linked: true, synced: true})
		if err := s.Logout(context.Background()); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		if b.cli.logouts != 0 {
			t.Fatal("unlink request sent while offline")
		}
		b.states.waitFor(t, StateLoggedOut)
		dev, err := b.engine.container.GetDevice(context.Background(), mustJID(testDeviceJID))
		if err != nil || dev != nil {
			t.Fatalf("device still stored: %v, %v", dev, err)
		}
		// The session can pair again.
		if s.JID() != "" || s.State() != StateLoggedOut {
			t.Fatalf("JID %q state %s", s.JID(), s.State())
		}
	})

	t.Run("NotPaired", func(t *testing.T) {
		t.Parallel()
		s, _ := setupSession(t, sessionOpts{})
		if err := s.Logout(context.Background()); !errors.Is(err, ErrNotPaired) {
			t.Fatalf("err = %v, want ErrNotPaired", err)
		}
	})
}

func mustJID(s string) types.JID {
	j, err := types.ParseJID(s)
	if err != nil {
		panic(err)
	}
	return j
}

func TestSlogWALogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	wl := newSlogWALogger(log).Sub("Client").Sub("sales")
	wl.Debugf("hidden %d", 1)
	wl.Infof("dialing %s", "web.whatsapp.com")
	wl.Errorf("failed: %v", errors.New("boom"))
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="dialing web.whatsapp.com" module=Client/sales`,
		`level=ERROR msg="failed: boom" module=Client/sales`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("debug line logged at info level:\n%s", out)
	}
}
