package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// TestWhatsmeowSession_SendOutcome feeds SendStatus what whatsmeow's
// SendMessage returns in each case and checks the engine's outcome.
func TestWhatsmeowSession_SendOutcome(t *testing.T) {
	t.Parallel()
	written := whatsmeow.SendResponse{DebugTimings: whatsmeow.MessageDebugTimings{Send: time.Millisecond}}
	notWritten := whatsmeow.SendResponse{}
	tests := []struct {
		name          string
		resp          whatsmeow.SendResponse
		err           error
		wantUnconfirm bool
		wantRefused   int // ack error code, 0: not a refusal
		wantPermanent bool
		wantNotConn   bool
	}{
		{"AckTimedOut", written, whatsmeow.ErrMessageTimedOut, true, 0, false, false},
		{"DeadlineAfterWrite", written, context.DeadlineExceeded, true, 0, false, false},
		{"CanceledAfterWrite", written, context.Canceled, true, 0, false, false},
		// Nothing was written: a plain failure, safe to retry.
		{"DeadlineBeforeWrite", notWritten, fmt.Errorf("failed to get device list: %w", context.DeadlineExceeded), false, 0, false, false},
		{"ServerRefused463", written, fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 463), false, 463, true, false},
		{"ServerRateLimited429", written, fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 429), false, 429, false, false},
		{"NotConnected", notWritten, whatsmeow.ErrNotConnected, false, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, b := setupConnected(t)
			b.cli.sendResp, b.cli.sendErr = tt.resp, tt.err
			msg := &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(tt.name)}}
			_, err := s.SendStatus(context.Background(), "3EB0"+tt.name, msg)
			if err == nil {
				t.Fatal("SendStatus succeeded")
			}
			if got := errors.Is(err, ErrUnconfirmed); got != tt.wantUnconfirm {
				t.Errorf("errors.Is(%v, ErrUnconfirmed) = %v", err, got)
			}
			if got := errors.Is(err, ErrNotConnected); got != tt.wantNotConn {
				t.Errorf("errors.Is(%v, ErrNotConnected) = %v", err, got)
			}
			var re *RefusedError
			if errors.As(err, &re) != (tt.wantRefused != 0) {
				t.Fatalf("RefusedError: %v, want code %d", err, tt.wantRefused)
			}
			if re != nil && (re.Code != tt.wantRefused || re.Permanent() != tt.wantPermanent) {
				t.Errorf("refused code %d permanent %v, want %d %v", re.Code, re.Permanent(), tt.wantRefused, tt.wantPermanent)
			}
			// Whatever the outcome, the message is kept for retry receipts.
			got := b.engine.sentMessage("sales", types.StatusBroadcastJID, types.MessageID("3EB0"+tt.name))
			requireProtoEqual(t, msg, got)
		})
	}
}

// TestWhatsmeowSession_RetryReceipt: whatsmeow's GetMessageForRetry is
// answered from the database, for status@broadcast only, also by a new
// engine on the same database (a restart).
func TestWhatsmeowSession_RetryReceipt(t *testing.T) {
	t.Parallel()
	st := storetest.New(t, store.SQLite)
	e1, err := NewWhatsmeow(st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	msg := &waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: proto.String("https://mmg.whatsapp.net/x"), MediaKeyTimestamp: proto.Int64(1764417600)}}
	if err := e1.rememberSent(context.Background(), "sales", "3EB0RETRY", msg); err != nil {
		t.Fatal(err)
	}
	e2, err := NewWhatsmeow(st, slog.New(slog.DiscardHandler)) // after a restart
	if err != nil {
		t.Fatal(err)
	}
	dev := e2.container.NewDevice()
	s := newWhatsmeowSession(e2, OpenParams{Instance: "sales"})
	cli := e2.newClient(dev, s)
	s.setClient(dev, cli)
	t.Cleanup(func() { s.Close() })
	requester := types.NewJID("15550001111", types.DefaultUserServer)
	requireProtoEqual(t, msg, cli.GetMessageForRetry(requester, types.StatusBroadcastJID, "3EB0RETRY"))
	if m := cli.GetMessageForRetry(requester, requester, "3EB0RETRY"); m != nil {
		t.Errorf("a chat message id answered from the status store: %v", m)
	}
	if m := cli.GetMessageForRetry(requester, types.StatusBroadcastJID, "3EB0UNKNOWN"); m != nil {
		t.Errorf("unknown id answered: %v", m)
	}
	if m := e2.sentMessage("other", types.StatusBroadcastJID, "3EB0RETRY"); m != nil {
		t.Errorf("another instance's status answered: %v", m)
	}
}

// TestWhatsmeowSession_Audience reads the audience per privacy mode from a
// privacy source returning what whatsmeow's GetStatusPrivacy returns and
// the device's real contact store.
func TestWhatsmeowSession_Audience(t *testing.T) {
	t.Parallel()
	ann := types.NewJID("15550000001", types.DefaultUserServer)
	bob := types.NewJID("15550000002", types.DefaultUserServer)
	cid := types.NewJID("15550000003", types.DefaultUserServer)
	pushOnly := types.NewJID("15550000004", types.DefaultUserServer)
	stranger := types.NewJID("15550000009", types.DefaultUserServer)
	own := types.NewJID("15551234567", types.DefaultUserServer)
	tests := []struct {
		name    string
		privacy []types.StatusPrivacy
		want    Audience
	}{
		{"DefaultIsContacts", nil, Audience{AudienceContacts, []string{ann.String(), bob.String(), cid.String()}}},
		{"Contacts", []types.StatusPrivacy{{Type: types.StatusPrivacyTypeContacts, IsDefault: true}},
			Audience{AudienceContacts, []string{ann.String(), bob.String(), cid.String()}}},
		{"ContactsExcept", []types.StatusPrivacy{{Type: types.StatusPrivacyTypeBlacklist, List: []types.JID{bob}}},
			Audience{AudienceContactsExcept, []string{ann.String(), cid.String()}}},
		{"ContactsExceptEveryone", []types.StatusPrivacy{{Type: types.StatusPrivacyTypeBlacklist, List: []types.JID{ann, bob, cid}}},
			Audience{AudienceContactsExcept, nil}},
		// The list is the audience, saved contacts or not; the own account never is.
		{"OnlyShareWith", []types.StatusPrivacy{{Type: types.StatusPrivacyTypeWhitelist, List: []types.JID{stranger, bob, own}}},
			Audience{AudienceOnlyShareWith, []string{bob.String(), stranger.String()}}},
		{"OnlyShareWithNobody", []types.StatusPrivacy{{Type: types.StatusPrivacyTypeWhitelist}}, Audience{AudienceOnlyShareWith, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, b := setupConnected(t)
			ctx := context.Background()
			for _, c := range []struct {
				jid  types.JID
				full string
			}{{ann, "Ann"}, {bob, "Bob"}, {cid, "Cid"}, {own, "Me"}} {
				if err := b.dev.Contacts.PutContactName(ctx, c.jid, c.full, c.full); err != nil {
					t.Fatal(err)
				}
			}
			// A pushname alone is not a saved contact (whatsmeow broadcast.go).
			if _, _, err := b.dev.Contacts.PutPushName(ctx, pushOnly, "Pusher"); err != nil {
				t.Fatal(err)
			}
			b.cli.privacy = tt.privacy
			got, err := s.Audience(ctx)
			if err != nil {
				t.Fatalf("Audience: %v", err)
			}
			if got.Mode != tt.want.Mode || fmt.Sprint(got.Recipients) != fmt.Sprint(tt.want.Recipients) {
				t.Fatalf("audience = %+v, want %+v", *got, tt.want)
			}
			// The send deadline follows the audience just read.
			if _, err := s.SendStatus(ctx, "3EB0AUD", &waE2E.Message{Conversation: proto.String("x")}); err != nil {
				t.Fatal(err)
			}
			if c := b.cli.sendCalls()[0]; c.extra[0].Timeout != SendDeadline(len(tt.want.Recipients)) {
				t.Errorf("whatsmeow timeout %s, want %s", c.extra[0].Timeout, SendDeadline(len(tt.want.Recipients)))
			}
		})
	}

	t.Run("PrivacyUnreadable", func(t *testing.T) {
		t.Parallel()
		s, b := setupConnected(t)
		b.cli.privacyErr = whatsmeow.ErrIQTimedOut
		if _, err := s.Audience(context.Background()); !errors.Is(err, whatsmeow.ErrIQTimedOut) {
			t.Fatalf("Audience: %v", err)
		}
	})
}

func TestSendDeadline(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{
		-1: 75 * time.Second, 0: 75 * time.Second, 1000: 105 * time.Second,
		10_000: 375 * time.Second, 27_500: 15 * time.Minute, 1_000_000: 15 * time.Minute,
	} {
		if got := SendDeadline(n); got != want {
			t.Errorf("SendDeadline(%d) = %s, want %s", n, got, want)
		}
	}
}

// TestWhatsmeowSession_SendOwnContext: a caller that gives up (an HTTP
// client gone) does not cut a fan-out short: the send runs on its own
// context, with the audience's deadline.
func TestWhatsmeowSession_SendOwnContext(t *testing.T) {
	t.Parallel()
	s, b := setupConnected(t)
	ctx, cancel := context.WithCancel(context.Background())
	cli, err := s.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.send(ctx, cli, "3EB0OWN", &waE2E.Message{Conversation: proto.String("x")}); err != nil {
		t.Fatalf("send: %v", err)
	}
	c := b.cli.sendCalls()[0]
	if c.ctxErr != nil || c.deadline.IsZero() {
		t.Fatalf("send context err %v, deadline %v; want live, with a deadline", c.ctxErr, c.deadline)
	}
}

// TestWhatsmeowSession_EventsQueued: whatsmeow's event handler returns at
// once even while the state hooks (database, event publishing) are stuck;
// the events are applied later, in order.
func TestWhatsmeowSession_EventsQueued(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, store.SQLite)
	release := make(chan struct{})
	got := make(chan StateChange, 8)
	s := newWhatsmeowSession(e, OpenParams{Instance: "sales", Hooks: Hooks{OnState: func(c StateChange) {
		<-release
		got <- c
	}}})
	t.Cleanup(func() { s.Close() })
	dev := e.container.NewDevice()
	cli := e.newClient(dev, s)
	s.setClient(dev, cli)
	in := cli.DangerousInternals()
	// whatsmeow dispatches synchronously: these calls return only because
	// the handler queues.
	in.DispatchEvent(&events.PairError{Error: errors.New("first")})
	in.DispatchEvent(&events.QRScannedWithoutMultidevice{})
	in.DispatchEvent(&events.ClientOutdated{})
	close(release)
	for _, want := range []string{"pairing failed: first", "QR code scanned by a phone without multi-device; enable it and scan again", ReasonClientOutdated} {
		if c := waitOrTimeout(t, got); c.Reason != want {
			t.Fatalf("reason %q, want %q", c.Reason, want)
		}
	}
}

// TestWhatsmeowSession_SyncingContacts: a login whose contacts never sync
// says syncing_contacts after the grace time and asks for a full resync,
// unless the privacy mode needs no contacts.
func TestWhatsmeowSession_SyncingContacts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		privacy    []types.StatusPrivacy
		wantState  State
		wantReason string
		wantFetch  bool
	}{
		{"Contacts", nil, StateConnecting, ReasonSyncingContacts, true},
		{"OnlyShareWith", []types.StatusPrivacy{{Type: types.StatusPrivacyTypeWhitelist, List: []types.JID{types.NewJID("1555", types.DefaultUserServer)}}},
			StateConnected, `contacts not synced; not needed: status privacy is "only share with"`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, _ := newTestEngine(t, store.SQLite)
			e.contactsGrace = time.Millisecond // the check's trigger, not a timing assertion
			rec := newStateRecorder()
			dev := storeLinkedDevice(t, e, testDeviceJID)
			fc := newFakeClient()
			fc.loggedIn, fc.privacy = true, tt.privacy
			s := newWhatsmeowSession(e, OpenParams{Instance: "sales", Hooks: rec.hooks()})
			s.setClient(dev, fc)
			t.Cleanup(func() { s.Close() })
			s.handleEvent(&events.Connected{})
			if c := rec.waitFor(t, StateConnecting); c.Reason != "logged in; waiting for the first app-state sync" {
				t.Fatalf("first reason %q", c.Reason)
			}
			var c StateChange
			for c.Reason != tt.wantReason {
				c = rec.waitFor(t, tt.wantState)
			}
			if tt.wantFetch {
				deadline := time.After(waitTimeout)
				for {
					fc.mu.Lock()
					fetches := append([]appStateFetch(nil), fc.fetches...)
					fc.mu.Unlock()
					if len(fetches) > 0 {
						if want := (appStateFetch{appstate.WAPatchCriticalUnblockLow, true, false}); fetches[0] != want {
							t.Fatalf("FetchAppState%+v, want %+v", fetches[0], want)
						}
						break
					}
					select {
					case <-deadline:
						t.Fatal("no full resync requested")
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		})
	}
}

// loopbackTransport sends every request to srv, whatever its URL says: the
// injected client through which web.whatsapp.com is "fetched".
type loopbackTransport struct {
	srv  *httptest.Server
	hits atomic.Int32
}

func (lt *loopbackTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	lt.hits.Add(1)
	u, _ := url.Parse(lt.srv.URL)
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
	return http.DefaultTransport.RoundTrip(r)
}

func whatsappWeb(t *testing.T, status int, body string) *loopbackTransport {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" || r.Header.Get("Sec-Fetch-Mode") != "navigate" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return &loopbackTransport{srv: srv}
}

// TestVersionKeeper changes whatsmeow's package-global version: its
// subtests run one after the other, and no other test reads the version.
func TestVersionKeeper(t *testing.T) {
	builtIn := wastore.GetWAVersion()
	t.Cleanup(func() { newVersionKeeper(VersionConfig{}, nil, nil).apply(builtIn, "built-in") })
	log := slog.New(slog.DiscardHandler)
	page := `<script>window.__x={"client_revision":1032999999,"server_revision":1}</script>`
	advertised := func() wastore.WAVersionContainer {
		av := wastore.BaseClientPayload.GetUserAgent().GetAppVersion()
		return wastore.WAVersionContainer{av.GetPrimary(), av.GetSecondary(), av.GetTertiary()}
	}

	t.Run("FetchedAndStored", func(t *testing.T) {
		st := storetest.New(t, store.SQLite)
		lt := whatsappWeb(t, 200, page)
		k := newVersionKeeper(VersionConfig{HTTPClient: &http.Client{Transport: lt}}, st, log)
		if err := k.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := wastore.WAVersionContainer{2, 3000, 1032999999}
		if v, src := k.Current(); v != want || src != "fetched" {
			t.Fatalf("current %s (%s), want %s fetched", v, src, want)
		}
		if wastore.GetWAVersion() != want || advertised() != want {
			t.Fatalf("whatsmeow advertises %s / login payload %s, want %s", wastore.GetWAVersion(), advertised(), want)
		}
		if v, err := st.SettingGet(context.Background(), versionSetting); err != nil || v != want.String() {
			t.Fatalf("stored %q, %v", v, err)
		}
		if lt.hits.Load() != 1 {
			t.Fatalf("%d fetches", lt.hits.Load())
		}
	})

	t.Run("FetchFailsKeepsStored", func(t *testing.T) {
		st := storetest.New(t, store.SQLite)
		if err := st.SettingPut(context.Background(), versionSetting, "2.3000.1033000001"); err != nil {
			t.Fatal(err)
		}
		newVersionKeeper(VersionConfig{}, nil, log).apply(builtIn, "built-in")
		k := newVersionKeeper(VersionConfig{HTTPClient: &http.Client{Transport: whatsappWeb(t, 503, "down")}}, st, log)
		if err := k.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := wastore.WAVersionContainer{2, 3000, 1033000001}
		if v, src := k.Current(); v != want || src != "stored" || advertised() != want {
			t.Fatalf("current %s (%s), payload %s; want the stored %s", v, src, advertised(), want)
		}
		// A later refresh that fails too keeps it.
		if _, err := k.Refresh(context.Background()); err == nil {
			t.Fatal("refresh against a failing server succeeded")
		}
		if v, _ := k.Current(); v != want {
			t.Fatalf("current %s after a failed refresh", v)
		}
	})

	t.Run("PageWithoutVersion", func(t *testing.T) {
		st := storetest.New(t, store.SQLite)
		newVersionKeeper(VersionConfig{}, nil, log).apply(builtIn, "built-in")
		k := newVersionKeeper(VersionConfig{HTTPClient: &http.Client{Transport: whatsappWeb(t, 200, "<html>captcha</html>")}}, st, log)
		if err := k.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		if v, src := k.Current(); v != builtIn || src != "built-in" {
			t.Fatalf("current %s (%s), want whatsmeow's built-in %s", v, src, builtIn)
		}
	})

	t.Run("Pinned", func(t *testing.T) {
		st := storetest.New(t, store.SQLite)
		lt := whatsappWeb(t, 200, page)
		k := newVersionKeeper(VersionConfig{Pinned: "2.3000.1000000001", HTTPClient: &http.Client{Transport: lt}}, st, log)
		if err := k.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		k.Refresh(context.Background())
		want := wastore.WAVersionContainer{2, 3000, 1000000001}
		if v, src := k.Current(); v != want || src != "pinned" || advertised() != want {
			t.Fatalf("current %s (%s), want pinned %s", v, src, want)
		}
		if lt.hits.Load() != 0 {
			t.Fatalf("a pinned version fetched %d times", lt.hits.Load())
		}
		if err := newVersionKeeper(VersionConfig{Pinned: "2.3000"}, st, log).Init(context.Background()); err == nil {
			t.Fatal("a malformed STATUSFLOW_WA_VERSION was accepted")
		}
	})

	t.Run("ClientOutdatedRefreshesAndRetriesOnce", func(t *testing.T) {
		s, b := setupConnected(t)
		lt := whatsappWeb(t, 200, page)
		b.engine.version = newVersionKeeper(VersionConfig{HTTPClient: &http.Client{Transport: lt}}, storetest.New(t, store.SQLite), log)
		b.engine.versionOnce.Do(func() {}) // the policy's own start-up fetch is not under test here
		s.handleEvent(&events.Disconnected{})
		s.handleEvent(&events.ClientOutdated{})
		if c := b.states.waitFor(t, StateDisconnected); c.Reason != "connection closed; reconnecting" {
			t.Fatalf("reason %q", c.Reason)
		}
		if c := b.states.waitFor(t, StateDisconnected); c.Reason != ReasonClientOutdated {
			t.Fatalf("reason %q, want %s", c.Reason, ReasonClientOutdated)
		}
		// The retry dials once, with the refreshed version.
		b.states.waitFor(t, StateConnecting)
		if lt.hits.Load() != 1 {
			t.Fatalf("%d version fetches, want 1", lt.hits.Load())
		}
		deadline := time.After(waitTimeout)
		for {
			b.cli.mu.Lock()
			n := b.cli.connects
			b.cli.mu.Unlock()
			if n == 1 {
				break
			}
			select {
			case <-deadline:
				t.Fatalf("%d dials after client_outdated, want 1", n)
			case <-time.After(5 * time.Millisecond):
			}
		}
		// Refused again: reported, not retried again.
		s.handleEvent(&events.ClientOutdated{}) // retryOutdated runs (and declines) inside
		if lt.hits.Load() != 1 {
			t.Fatalf("%d version fetches after a second refusal, want 1", lt.hits.Load())
		}
	})
}
