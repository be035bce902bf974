package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// TestStore runs one suite on every dialect, like riverdrivertest.Exercise.
func TestStore(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			exercise(t, func(t *testing.T) *store.Store { return storetest.New(t, d) })
		})
	}
}

func exercise(t *testing.T, newStore func(t *testing.T) *store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)

	t.Run("InstanceLifecycle", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		in := &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: "h1", State: "connected", CreatedAt: now}
		if err := s.InstanceInsert(ctx, in); err != nil {
			t.Fatal(err)
		}
		if err := s.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: "h2", CreatedAt: now}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate name: got %v, want ErrConflict", err)
		}
		got, err := s.InstanceGetByTokenHash(ctx, "h1")
		if err != nil || got.Name != "sales" || !got.CreatedAt.Equal(now) {
			t.Fatalf("by token: %+v, %v", got, err)
		}
		if err := s.InstanceSetDevice(ctx, "sales", "123@s.whatsapp.net"); err != nil {
			t.Fatal(err)
		}
		if err := s.InstanceSetState(ctx, "nope", "connected"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown instance: %v", err)
		}
		got, _ = s.InstanceGetByName(ctx, "sales")
		if got.DeviceJID != "123@s.whatsapp.net" {
			t.Fatalf("device: %q", got.DeviceJID)
		}
		list, err := s.InstanceList(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
		if err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return s.EventInsertTx(ctx, tx, &store.Event{ID: "e1", Instance: "sales", Type: "status.published", Time: now, Body: "{}"})
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.InstanceDelete(ctx, "sales"); err != nil {
			t.Fatal(err)
		}
		if evs, err := s.EventList(ctx, &store.EventListParams{Instance: "sales"}); err != nil || len(evs) != 0 {
			t.Fatalf("events left after delete: %d %v", len(evs), err)
		}
		if _, err := s.InstanceGetByName(ctx, "sales"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})

	t.Run("StatusRevoke", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		st := &store.Status{Instance: "a", MessageID: "3EB0X", Type: "text", Source: "crm", TraceID: "t1", CreatedAt: now}
		if err := s.StatusInsert(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := s.StatusMarkRevoked(ctx, "a", "3EB0X", now); err != nil {
			t.Fatal(err)
		}
		got, err := s.StatusGet(ctx, "a", "3EB0X")
		if err != nil || got.RevokedAt == nil || got.Source != "crm" || got.Origin != "{}" {
			t.Fatalf("got %+v %v", got, err)
		}
		if _, err := s.StatusGet(ctx, "b", "3EB0X"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other instance: %v", err)
		}
	})

	t.Run("SandboxNewestFirst", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for i, id := range []string{"A", "B", "C"} {
			if err := s.SandboxStatusInsert(ctx, &store.SandboxStatus{Instance: "a", MessageID: id, Type: "text", Message: "{}", CreatedAt: now.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SandboxStatusMarkRevoked(ctx, "a", "B"); err != nil {
			t.Fatal(err)
		}
		list, err := s.SandboxStatusList(ctx, "a", 10)
		if err != nil || len(list) != 3 || list[0].MessageID != "C" || !list[1].Revoked || list[2].Revoked {
			t.Fatalf("list %+v %v", list, err)
		}
	})

	t.Run("WriteQueuedCommitsInOrder", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var waits []func() error
		for i := range 20 {
			id := fmt.Sprintf("Q%02d", i)
			if i == 7 {
				id = "Q00" // taken by the first: this one fails alone
			}
			waits = append(waits, s.WriteQueued(ctx, func(ctx context.Context, tx *sql.Tx) error {
				return s.SandboxStatusInsertTx(ctx, tx, &store.SandboxStatus{Instance: "q", MessageID: id, Type: "text", Message: "{}", CreatedAt: now})
			}))
		}
		// A later Write returning means every write queued before it has committed.
		if err := s.SandboxStatusInsert(ctx, &store.SandboxStatus{Instance: "q", MessageID: "LAST", Type: "text", Message: "{}", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.SandboxStatusCount(ctx, "q"); n != 20 {
			t.Fatalf("after the later write: %d rows, want 20", n)
		}
		for i, wait := range waits {
			err := wait()
			if i == 7 {
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("duplicate queued write: %v, want ErrConflict", err)
				}
			} else if err != nil {
				t.Fatalf("queued write %d: %v", i, err)
			}
			if err2 := wait(); !errors.Is(err2, err) && err2 != err {
				t.Fatalf("wait again: %v, then %v", err, err2)
			}
		}
		// Queued alone, with no later Write: it still commits.
		if err := s.WriteQueued(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return s.SandboxStatusInsertTx(ctx, tx, &store.SandboxStatus{Instance: "q", MessageID: "ALONE", Type: "text", Message: "{}", CreatedAt: now})
		})(); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.SandboxStatusCount(ctx, "q"); n != 21 {
			t.Fatalf("%d rows, want 21", n)
		}
	})

	t.Run("EventSeqIncreases", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for i := range 50 {
			ev := &store.Event{ID: fmt.Sprintf("e%d", i), Instance: "a", Type: "status.published", Time: now, Body: "{}"}
			if err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.EventInsertTx(ctx, tx, ev) }); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.EventList(ctx, &store.EventListParams{Instance: "a", Limit: 1000})
		if err != nil || len(list) != 50 {
			t.Fatalf("list: %d events, %v", len(list), err)
		}
		for i, e := range list {
			if e.ID != fmt.Sprintf("e%d", i) || i > 0 && e.Seq <= list[i-1].Seq {
				t.Fatalf("event %d: %s seq %d, want e%d after seq %d", i, e.ID, e.Seq, i, list[max(i-1, 0)].Seq)
			}
		}
	})

	t.Run("EnabledWebhooksFollowChanges", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.InstanceInsert(ctx, &store.Instance{Name: "w", Engine: "sandbox", TokenHash: "hw", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		enabled := func(step string, want int) {
			t.Helper()
			var got []*store.Webhook
			if err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
				got, err = s.WebhookListEnabledTx(ctx, tx, "w")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != want {
				t.Fatalf("%s: %d enabled webhooks, want %d", step, len(got), want)
			}
		}
		w := &store.Webhook{ID: "wh1", Instance: "w", Label: "default", URL: "http://127.0.0.1:1/h", Enabled: true, Secret: "s", CreatedAt: now, UpdatedAt: now}
		enabled("none yet", 0)
		if _, err := s.WebhookUpsert(ctx, w); err != nil {
			t.Fatal(err)
		}
		enabled("created", 1)
		if err := s.WebhookDisable(ctx, "wh1", "gone", now); err != nil {
			t.Fatal(err)
		}
		enabled("disabled", 0)
		w2 := *w
		if _, err := s.WebhookUpsert(ctx, &w2); err != nil {
			t.Fatal(err)
		}
		enabled("enabled again", 1)
		if err := s.WebhookRotateSecret(ctx, "wh1", "s2", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		enabled("rotated", 1)
		if err := s.WebhookDelete(ctx, "w", "default", now); err != nil {
			t.Fatal(err)
		}
		enabled("deleted", 0)
		w3 := *w
		w3.ID = "wh3"
		if _, err := s.WebhookUpsert(ctx, &w3); err != nil {
			t.Fatal(err)
		}
		enabled("created again", 1)
		if err := s.InstanceDelete(ctx, "w"); err != nil {
			t.Fatal(err)
		}
		enabled("instance deleted", 0)
	})

	t.Run("WriteIsolatesFailures", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make([]error, 50)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("M%02d", i)
				if i%10 == 0 {
					id = "DUP" // all but one of these fail on the primary key
				}
				errs[i] = s.SandboxStatusInsert(ctx, &store.SandboxStatus{Instance: "a", MessageID: id, Type: "text", Message: "{}", CreatedAt: now})
			}()
		}
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if errors.Is(err, store.ErrConflict) {
				failed++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		n, _ := s.SandboxStatusCount(ctx, "a")
		if failed != 4 || n != 46 {
			t.Fatalf("failed %d (want 4), stored %d (want 46)", failed, n)
		}
	})

	t.Run("SettingsFirstWins", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.SettingInsert(ctx, "k", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SettingInsert(ctx, "k", "v2"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second insert: %v", err)
		}
		if v, _ := s.SettingGet(ctx, "k"); v != "v1" {
			t.Fatalf("got %q", v)
		}
	})
}
