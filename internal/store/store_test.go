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
