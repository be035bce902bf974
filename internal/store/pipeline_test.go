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

// Many concurrent event writes group-commit (pipelined on PostgreSQL); one
// of them fails on a queued INSERT. That write alone gets its error, every
// other commits exactly once, and each trace's events keep the order they
// were queued in.
func TestWritePipelined_OneFailureKeepsTheOthers(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.New(t, d)
			ctx := context.Background()
			now := time.Now()
			if err := s.SandboxStatusInsert(ctx, &store.SandboxStatus{Instance: "p", MessageID: "taken", Type: "text", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			const traces = 60
			var wg sync.WaitGroup
			errs := make([]error, traces)
			for i := range traces {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lctx := store.WithWriteLane(ctx, fmt.Sprint("trace", i), "p")
					// Two events per trace, the first queued without waiting,
					// as the core does with status.accepted.
					first := s.WriteQueued(lctx, func(ctx context.Context, tx *sql.Tx) error {
						return s.EventInsertTx(ctx, tx, &store.Event{ID: fmt.Sprint("a", i), Instance: "p", Type: "status.accepted", Time: now, Body: "{}"})
					})
					id := fmt.Sprint("m", i)
					if i == traces/2 {
						id = "taken" // a unique key taken: this write must fail alone
					}
					err := s.WritePipelined(lctx, func(ctx context.Context, tx *sql.Tx) error {
						if err := s.SandboxStatusInsertTx(ctx, tx, &store.SandboxStatus{Instance: "p", MessageID: id, Type: "text", CreatedAt: now}); err != nil {
							return err
						}
						return s.EventInsertTx(ctx, tx, &store.Event{ID: fmt.Sprint("b", i), Instance: "p", Type: "status.published", Time: now, Body: "{}"})
					})
					if ferr := first(); ferr != nil {
						t.Errorf("trace %d: first event: %v", i, ferr)
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if i == traces/2 {
					if !errors.Is(err, store.ErrConflict) {
						t.Errorf("the write with a taken id: %v, want ErrConflict", err)
					}
				} else if err != nil {
					t.Errorf("trace %d: %v", i, err)
				}
			}
			n, err := s.SandboxStatusCount(ctx, "p")
			if err != nil || n != traces {
				t.Fatalf("sandbox rows: %d, %v; want %d (the taken one and %d new)", n, err, traces, traces-1)
			}
			evs, err := s.EventList(ctx, &store.EventListParams{Instance: "p", Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2*traces-1 {
				t.Fatalf("%d events, want %d", len(evs), 2*traces-1)
			}
			pos := map[string]int{}
			for i, e := range evs {
				if _, dup := pos[e.ID]; dup {
					t.Fatalf("event %s twice", e.ID)
				}
				pos[e.ID] = i
			}
			for i := range traces {
				b, ok := pos[fmt.Sprint("b", i)]
				if i == traces/2 {
					if ok {
						t.Errorf("the failed write's event was kept")
					}
					continue
				}
				if a := pos[fmt.Sprint("a", i)]; !ok || a > b {
					t.Errorf("trace %d: status.published (at %d) before status.accepted (at %d)", i, b, a)
				}
			}
		})
	}
}

// The sandbox's audience is kept in memory, yet a change or the instance's
// deletion is seen by the next read on the same store.
func TestSandboxAudience_ReadAfterChange(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.New(t, d)
			ctx := context.Background()
			if err := s.InstanceInsert(ctx, &store.Instance{Name: "p", Engine: "sandbox", TokenHash: "h", State: "connected", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			for i, mode := range []string{"contacts", "only", "except"} {
				if err := s.SandboxAudiencePut(ctx, "p", &store.SandboxAudience{Mode: mode, Recipients: []string{fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
				for range 2 { // read from the database, then from memory
					got, err := s.SandboxAudienceGet(ctx, "p")
					if err != nil || got.Mode != mode || len(got.Recipients) != 1 || got.Recipients[0] != fmt.Sprint(i) {
						t.Fatalf("after setting %s: %+v, %v", mode, got, err)
					}
					got.Recipients[0] = "changed by the caller" // the result is the caller's
				}
			}
			if err := s.InstanceDelete(ctx, "p"); err != nil {
				t.Fatal(err)
			}
			if got, err := s.SandboxAudienceGet(ctx, "p"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("after deleting the instance: %+v, %v", got, err)
			}
		})
	}
}
