package whatsapp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/statusflow/statusflow/internal/store/storetest"
)

// fakeWhatsApp is a loopback TLS server standing in for web.whatsapp.com:
// it records every websocket dial and refuses it with 503, which whatsmeow
// treats as retryable.
type fakeWhatsApp struct {
	srv   *httptest.Server
	dials chan *http.Request

	mu    sync.Mutex
	count int
}

func newFakeWhatsApp(t *testing.T) *fakeWhatsApp {
	t.Helper()
	f := &fakeWhatsApp{dials: make(chan *http.Request, 64)}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.count++
		f.mu.Unlock()
		select {
		case f.dials <- r.Clone(context.Background()):
		default:
		}
		http.Error(w, "try later", http.StatusServiceUnavailable)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns an HTTP client that sends every connection, whatever the
// host, to the fake server and trusts its certificate.
func (f *fakeWhatsApp) client(t *testing.T) *http.Client {
	t.Helper()
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	addr := f.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (f *fakeWhatsApp) dialCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func TestNewWhatsmeow(t *testing.T) {
	t.Parallel()

	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			st := storetest.New(t, d)
			// A second engine on the same database finds the tables in place.
			for range 2 {
				if _, err := NewWhatsmeow(st, slog.New(slog.DiscardHandler)); err != nil {
					t.Fatalf("NewWhatsmeow: %v", err)
				}
			}
			var n int
			if err := st.DB.QueryRow(`SELECT COUNT(*) FROM whatsmeow_device`).Scan(&n); err != nil {
				t.Fatalf("whatsmeow tables: %v", err)
			}
		})
	}
}

func TestWhatsmeow_Open(t *testing.T) {
	t.Parallel()

	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()

			t.Run("StoredDeviceDialsByItself", func(t *testing.T) {
				t.Parallel()
				e, st := newTestEngine(t, d)
				storeLinkedDevice(t, e, testDeviceJID)

				// A restart: a new engine on the same database.
				e2, err := NewWhatsmeow(st, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				wa := newFakeWhatsApp(t)
				e2.httpClient = wa.client(t)
				states := newStateRecorder()
				s, err := e2.Open(context.Background(), OpenParams{Instance: "sales", DeviceJID: testDeviceJID, Hooks: states.hooks()})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })

				if s.JID() != testDeviceJID {
					t.Fatalf("JID = %q", s.JID())
				}
				if c := states.waitFor(t, StateConnecting); c.Reason != "connecting stored session" {
					t.Fatalf("first change = %+v", c)
				}
				r := waitOrTimeout(t, wa.dials)
				if r.Host != "web.whatsapp.com" || r.URL.Path != "/ws/chat" ||
					r.Header.Get("Origin") != "https://web.whatsapp.com" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
					t.Fatalf("dial: host %q path %q origin %q upgrade %q", r.Host, r.URL.Path, r.Header.Get("Origin"), r.Header.Get("Upgrade"))
				}
				// The refused dial is retried with backoff; meanwhile the
				// session says connecting and publishing is refused.
				if c := states.waitFor(t, StateConnecting); !strings.Contains(c.Reason, "dial failed, retrying") {
					t.Fatalf("after refused dial: %+v", c)
				}
				if s.State() != StateConnecting {
					t.Fatalf("state = %s", s.State())
				}

				// Close stops the loop; goleak checks nothing is left running.
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				n := wa.dialCount()
				if err := s.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				if err := s.Reconnect(context.Background()); err != nil {
					t.Fatalf("Reconnect after Close: %v", err)
				}
				if wa.dialCount() != n {
					t.Fatal("dialled after Close")
				}
			})

			t.Run("NewInstanceWaitsForConnect", func(t *testing.T) {
				t.Parallel()
				e, _ := newTestEngine(t, d)
				states := newStateRecorder()
				s, err := e.Open(context.Background(), OpenParams{Instance: "fresh", Hooks: states.hooks()})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				if s.State() != StateDisconnected || s.JID() != "" {
					t.Fatalf("state %s JID %q", s.State(), s.JID())
				}
				if err := s.Reconnect(context.Background()); err != ErrNotPaired {
					t.Fatalf("Reconnect = %v, want ErrNotPaired", err)
				}
				_, err = s.SendStatus(context.Background(), "3EB0", textMessage("x", 0, 0))
				if !errors.Is(err, ErrNotConnected) || !errors.Is(err, ErrNotPaired) {
					t.Fatalf("SendStatus on an unlinked session: %v", err)
				}
				if len(states.changes) != 0 {
					t.Fatalf("changes = %+v", states.changes)
				}
			})

			t.Run("ConnectDialsForQRCode", func(t *testing.T) {
				t.Parallel()
				e, _ := newTestEngine(t, d)
				wa := newFakeWhatsApp(t)
				e.httpClient = wa.client(t)
				s, err := e.Open(context.Background(), OpenParams{Instance: "fresh"})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				// WhatsApp refuses the dial, so there is no QR code to return.
				p, err := s.Connect(context.Background(), "")
				if !errors.Is(err, ErrNotConnected) || p != nil {
					t.Fatalf("Connect = %+v, %v; want ErrNotConnected", p, err)
				}
				if r := waitOrTimeout(t, wa.dials); r.URL.Path != "/ws/chat" {
					t.Fatalf("dialled %s", r.URL)
				}
			})

			t.Run("DeviceMissingFromStore", func(t *testing.T) {
				t.Parallel()
				e, _ := newTestEngine(t, d)
				states := newStateRecorder()
				s, err := e.Open(context.Background(), OpenParams{Instance: "lost", DeviceJID: testDeviceJID, Hooks: states.hooks()})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				if c := states.waitFor(t, StateLoggedOut); c.Reason != "device not found in store" {
					t.Fatalf("change = %+v", c)
				}
				if s.JID() != "" {
					t.Fatalf("JID = %q", s.JID())
				}
			})

			t.Run("BadDeviceJID", func(t *testing.T) {
				t.Parallel()
				e, _ := newTestEngine(t, d)
				if _, err := e.Open(context.Background(), OpenParams{Instance: "bad", DeviceJID: "15551234567:x@s.whatsapp.net"}); err == nil {
					t.Fatal("no error")
				}
			})
		})
	}
}

// TestWhatsmeow_ClientEvents dispatches events through a real whatsmeow
// client, as its websocket handlers would, and checks they reach the
// session (and that a logout swaps in a fresh client without deadlocking
// inside whatsmeow's dispatch).
func TestWhatsmeow_ClientEvents(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, storetest.Dialects()[0])
	states := newStateRecorder()
	sess, err := e.Open(context.Background(), OpenParams{Instance: "sales", Hooks: states.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	s := sess.(*whatsmeowSession)
	cli := s.client().(*whatsmeow.Client)
	dispatch := func(evt any) { cli.DangerousInternals().DispatchEvent(evt) }

	dispatch(&events.PairSuccess{ID: mustJID(testDeviceJID)})
	states.waitFor(t, StateConnecting)
	if s.JID() != testDeviceJID || len(states.paired) != 1 {
		t.Fatalf("JID %q, OnPaired calls %q", s.JID(), states.paired)
	}
	dispatch(&events.Connected{})
	if c := states.waitFor(t, StateConnecting); c.Reason != "logged in; waiting for the first app-state sync" {
		t.Fatalf("after Connected: %+v", c)
	}
	dispatch(&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow})
	states.waitFor(t, StateConnected)

	dispatch(&events.LoggedOut{Reason: events.ConnectFailureLoggedOut})
	states.waitFor(t, StateLoggedOut)
	if s.holds(cli) || s.JID() != "" {
		t.Fatal("the logged-out client is still in use")
	}
	// Late events of the old client are dropped.
	dispatch(&events.Connected{})
	if s.State() != StateLoggedOut {
		t.Fatalf("state = %s after an old client's event", s.State())
	}
}

// Compile-time check that the engine satisfies the interface the manager uses.
var _ Engine = (*Whatsmeow)(nil)
