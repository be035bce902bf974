package status_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// edgeSession is a whatsmeow session at the network edge: it answers with
// what the whatsmeow engine returns for each outcome (sent, sent but not
// acknowledged, refused, offline) and records every id it was asked to send.
type edgeSession struct {
	whatsapp.Session // unused methods
	mu               sync.Mutex
	state            whatsapp.State
	audience         *whatsapp.Audience
	sendErrs         []error // one per send, then nil
	sends, revokes   []string
}

func (e *edgeSession) State() whatsapp.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

func (e *edgeSession) Audience(ctx context.Context) (*whatsapp.Audience, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != whatsapp.StateConnected {
		return nil, whatsapp.ErrNotConnected
	}
	return e.audience, nil
}

func (e *edgeSession) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sends = append(e.sends, id)
	if len(e.sendErrs) > 0 {
		err := e.sendErrs[0]
		e.sendErrs = e.sendErrs[1:]
		if err != nil {
			return time.Time{}, err
		}
	}
	return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), nil
}

func (e *edgeSession) RevokeStatus(ctx context.Context, id string) (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != whatsapp.StateConnected {
		return time.Time{}, whatsapp.ErrNotConnected
	}
	e.revokes = append(e.revokes, id)
	return time.Date(2026, 11, 29, 12, 1, 0, 0, time.UTC), nil
}

func (e *edgeSession) setState(st whatsapp.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state = st
}

type edgeBundle struct {
	store  *store.Store
	events *eventLog
	sess   *edgeSession
}

// setupEdge is the real core, with real idempotency on a real database,
// over an edge session.
func setupEdge(t *testing.T) (*status.Service, *edgeBundle) {
	t.Helper()
	st := storetest.New(t, store.SQLite)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	if _, _, err := mgr.Create(context.Background(), "sales", "sandbox", "hash"); err != nil {
		t.Fatal(err)
	}
	rec := events.NewRecorder(st, log)
	b := &edgeBundle{store: st, events: &eventLog{}, sess: &edgeSession{state: whatsapp.StateConnected,
		audience: &whatsapp.Audience{Mode: whatsapp.AudienceContacts, Recipients: []string{"15550100001@s.whatsapp.net", "15550100002@s.whatsapp.net"}}}}
	sessions := sessionsFunc(func(ctx context.Context, name string) (whatsapp.Session, error) {
		if name != "sales" {
			return nil, store.ErrNotFound
		}
		return b.sess, nil
	})
	rec.AddPublisher(b.events)
	return status.NewService(sessions, st, fileMedia{t.TempDir()}, rec, status.NewIdempotent(st, status.IdempotencyConfig{}), log), b
}

func publishText(key string) status.Command {
	return status.Command{Instance: "sales", IdempotencyKey: key, Args: status.PublishArgs{Type: "text", Message: "hi"}}
}

func TestService_Unconfirmed(t *testing.T) {
	t.Parallel()

	// The scenario of issue 12: the send times out after it was written,
	// the caller retries with the same key. One message id, one record,
	// reported as published (confirmed: false), and it can be revoked.
	t.Run("TimeoutThenRetrySameKey", func(t *testing.T) {
		t.Parallel()
		svc, b := setupEdge(t)
		ctx := context.Background()
		b.sess.sendErrs = []error{fmt.Errorf("%w: timed out waiting for message send response", whatsapp.ErrUnconfirmed)}
		res, err := svc.Execute(ctx, publishText("key-1"))
		if err != nil {
			t.Fatalf("unconfirmed send reported as %v", err)
		}
		if res.Confirmed == nil || *res.Confirmed || res.MessageID != status.KeyedMessageID("sales", "key-1") {
			t.Fatalf("result %+v", res)
		}
		st, err := b.store.StatusGet(ctx, "sales", res.MessageID)
		if err != nil || !st.Unconfirmed {
			t.Fatalf("stored %+v, %v; want an unconfirmed record", st, err)
		}
		evs := b.events.list()
		if len(evs) != 1 || evs[0].Type != status.EventStatusPublished {
			t.Fatalf("events %+v", evs)
		}
		if d := eventData[status.PublishedData](t, evs[0]); d.Confirmed || d.MessageID != res.MessageID || d.Audience == nil || d.Audience.Recipients != 2 {
			t.Fatalf("published data %+v", d)
		}

		again, err := svc.Execute(ctx, publishText("key-1"))
		if err != nil || !again.Replayed || again.MessageID != res.MessageID {
			t.Fatalf("retry: %+v, %v", again, err)
		}
		if len(b.sess.sends) != 1 {
			t.Fatalf("%d sends, want 1: %v", len(b.sess.sends), b.sess.sends)
		}

		del, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.DeleteArgs{MessageID: res.MessageID, DeleteForEveryone: true}})
		if err != nil || del.DeleteType != "revoke" || len(b.sess.revokes) != 1 || b.sess.revokes[0] != res.MessageID {
			t.Fatalf("revoke: %+v, %v, revokes %v", del, err, b.sess.revokes)
		}
		if st, _ := b.store.StatusGet(ctx, "sales", res.MessageID); st.RevokedAt == nil {
			t.Fatal("revoke not recorded")
		}
	})

	// A failed first attempt releases the key; the retry sends the same id
	// (had the first reached WhatsApp after all, it is the same message).
	t.Run("FailedThenRetrySameKeySameID", func(t *testing.T) {
		t.Parallel()
		svc, b := setupEdge(t)
		b.sess.sendErrs = []error{fmt.Errorf("%w: websocket closed", whatsapp.ErrNotConnected)}
		if _, err := svc.Execute(context.Background(), publishText("key-2")); !errors.Is(err, errcode.ErrDisconnected) {
			t.Fatalf("first attempt: %v", err)
		}
		res, err := svc.Execute(context.Background(), publishText("key-2"))
		if err != nil || res.Confirmed == nil || !*res.Confirmed {
			t.Fatalf("retry: %+v, %v", res, err)
		}
		want := status.KeyedMessageID("sales", "key-2")
		if len(b.sess.sends) != 2 || b.sess.sends[0] != want || b.sess.sends[1] != want {
			t.Fatalf("sent ids %v, want %s twice", b.sess.sends, want)
		}
	})

	t.Run("KeyedIDsDiffer", func(t *testing.T) {
		t.Parallel()
		a, b, c := status.KeyedMessageID("sales", "k"), status.KeyedMessageID("sales", "k2"), status.KeyedMessageID("ops", "k")
		if a == b || a == c || len(a) != 22 || !strings.HasPrefix(a, "3EB0") || a != strings.ToUpper(a) {
			t.Fatalf("ids %s %s %s", a, b, c)
		}
		if status.MessageIDFor("sales", "k") != a || status.MessageIDFor("sales", "") == status.MessageIDFor("sales", "") {
			t.Fatal("MessageIDFor")
		}
	})
}

func TestService_Refused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code      int
		permanent bool
	}{{463, true}, {479, true}, {429, false}} {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			svc, b := setupEdge(t)
			b.sess.sendErrs = []error{&whatsapp.RefusedError{Code: tt.code, Err: errors.New("server returned error")}}
			_, err := svc.Execute(context.Background(), publishText(""))
			var se *errcode.Error
			if !errors.As(err, &se) || se.Code != errcode.CodeSendFailed || se.Message != fmt.Sprintf("Failed to send status: WhatsApp refused the message (error %d)", tt.code) {
				t.Fatalf("got %v", err)
			}
			// The trigger consumer terminates what can never succeed.
			if bus.IsPermanent(err) != tt.permanent {
				t.Fatalf("bus.IsPermanent = %v, want %v", bus.IsPermanent(err), tt.permanent)
			}
		})
	}
}

func TestService_Audience(t *testing.T) {
	t.Parallel()

	t.Run("OnResultAndEvent", func(t *testing.T) {
		t.Parallel()
		svc, b := setupEdge(t)
		b.sess.audience = &whatsapp.Audience{Mode: whatsapp.AudienceContactsExcept, Recipients: []string{"1@s.whatsapp.net", "2@s.whatsapp.net", "3@s.whatsapp.net"}}
		res, err := svc.Execute(context.Background(), publishText(""))
		if err != nil {
			t.Fatal(err)
		}
		if res.Audience == nil || *res.Audience != (status.Audience{Mode: "contacts_except", Recipients: 3}) || !*res.Confirmed {
			t.Fatalf("result %+v", res)
		}
	})

	for _, mode := range whatsapp.AudienceModes() {
		t.Run("EmptyRefused/"+mode, func(t *testing.T) {
			t.Parallel()
			svc, b := setupEdge(t)
			b.sess.audience = &whatsapp.Audience{Mode: mode}
			_, err := svc.Execute(context.Background(), publishText(""))
			var se *errcode.Error
			if !errors.As(err, &se) || se.Code != errcode.CodeEmptyAudience || !strings.Contains(se.Message, "would reach nobody") ||
				!strings.Contains(se.Message, "allowEmptyAudience") {
				t.Fatalf("got %v", err)
			}
			if len(b.sess.sends) != 0 {
				t.Fatal("sent anyway")
			}
			if bus.IsPermanent(err) != true {
				t.Fatal("empty_audience is retried by the trigger consumer")
			}
		})
	}

	t.Run("EmptyAllowed", func(t *testing.T) {
		t.Parallel()
		svc, b := setupEdge(t)
		b.sess.audience = &whatsapp.Audience{Mode: whatsapp.AudienceOnlyShareWith}
		res, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "hi", AllowEmptyAudience: true}})
		if err != nil || res.Audience == nil || res.Audience.Recipients != 0 || len(b.sess.sends) != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
	})

	// The sandbox simulates an audience: 3 contacts by default, then what
	// the instance was given.
	t.Run("Sandbox", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		real := b.sess.Session // the sandbox session itself, an AudienceReader
		sessions := status.NewService(sessionsFunc(func(ctx context.Context, name string) (whatsapp.Session, error) { return real, nil }),
			b.store, fileMedia{t.TempDir()}, b.rec, nil, slog.New(slog.DiscardHandler))
		_ = svc
		ctx := context.Background()
		res, err := sessions.Execute(ctx, publishText(""))
		if err != nil || res.Audience == nil || *res.Audience != (status.Audience{Mode: "contacts", Recipients: whatsapp.SandboxDefaultContacts}) {
			t.Fatalf("default: %+v, %v", res, err)
		}
		if err := b.store.SandboxAudiencePut(ctx, "sales", &store.SandboxAudience{Mode: "contacts_except", Recipients: []string{}}); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Execute(ctx, publishText("")); !errors.Is(err, &errcode.Error{Code: errcode.CodeEmptyAudience}) {
			t.Fatalf("empty sandbox audience: %v", err)
		}
		if err := b.store.SandboxAudiencePut(ctx, "sales", &store.SandboxAudience{Mode: "only_share_with", Recipients: whatsapp.SandboxRecipients(250)}); err != nil {
			t.Fatal(err)
		}
		res, err = sessions.Execute(ctx, publishText(""))
		if err != nil || *res.Audience != (status.Audience{Mode: "only_share_with", Recipients: 250}) {
			t.Fatalf("250: %+v, %v", res, err)
		}
	})
}

// "Delete for me" only forgets the status here: it needs no connection.
func TestService_DeleteForMeWhileDisconnected(t *testing.T) {
	t.Parallel()
	svc, b := setupEdge(t)
	ctx := context.Background()
	res, err := svc.Execute(ctx, publishText(""))
	if err != nil {
		t.Fatal(err)
	}
	b.sess.setState(whatsapp.StateDisconnected)
	if _, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.DeleteArgs{MessageID: res.MessageID, DeleteForEveryone: true}}); !errors.Is(err, errcode.ErrDisconnected) {
		t.Fatalf("revoke while disconnected: %v", err)
	}
	del, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.DeleteArgs{MessageID: res.MessageID}})
	if err != nil || del.DeleteType != "delete_for_me" {
		t.Fatalf("delete for me while disconnected: %+v, %v", del, err)
	}
	if _, err := b.store.StatusGet(ctx, "sales", res.MessageID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("still stored: %v", err)
	}
	if _, err := svc.Execute(ctx, status.Command{Instance: "ghost", Args: status.DeleteArgs{MessageID: res.MessageID}}); !errors.Is(err, errcode.ErrInstanceNotFound) {
		t.Fatalf("unknown instance: %v", err)
	}
}
