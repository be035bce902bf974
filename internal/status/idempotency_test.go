package status_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

func TestIdempotent_Do(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*status.Idempotent, *store.Store) {
		t.Helper()
		st := storetest.New(t, store.SQLite)
		return status.NewIdempotent(st, status.IdempotencyConfig{Wait: 2 * time.Second, Poll: 5 * time.Millisecond}), st
	}
	ok := func(id string) func(context.Context) (*status.Result, error) {
		return func(context.Context) (*status.Result, error) { return &status.Result{MessageID: id, TraceID: "t"}, nil }
	}

	t.Run("WaiterGetsFirstResult", func(t *testing.T) {
		t.Parallel()
		idem, _ := setup(t)
		started, release := make(chan struct{}), make(chan struct{})
		first := make(chan *status.Result, 1)
		go func() {
			res, _ := idem.Do(t.Context(), "sales", "k", "h", func(context.Context) (*status.Result, error) {
				close(started)
				<-release
				return &status.Result{MessageID: "FIRST"}, nil
			})
			first <- res
		}()
		<-started
		ran := false
		done := make(chan *status.Result, 1)
		go func() {
			res, err := idem.Do(t.Context(), "sales", "k", "h", func(context.Context) (*status.Result, error) { ran = true; return nil, nil })
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		close(release)
		got := <-done
		if ran || got == nil || got.MessageID != "FIRST" || !got.Replayed {
			t.Fatalf("waiter: ran=%v %+v", ran, got)
		}
		if f := <-first; f.MessageID != "FIRST" || f.Replayed {
			t.Fatalf("first: %+v", f)
		}
	})
	t.Run("InProgressTimesOut", func(t *testing.T) {
		t.Parallel()
		_, st := setup(t)
		idem := status.NewIdempotent(st, status.IdempotencyConfig{Wait: 50 * time.Millisecond, Poll: 5 * time.Millisecond})
		if _, _, err := st.IdempotencyClaim(t.Context(), &store.IdempotencyClaimParams{Instance: "sales", Key: "k", RequestHash: "h", ClaimID: "other", Now: time.Now(), Lease: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := idem.Do(t.Context(), "sales", "k", "h", ok("X")); !errors.Is(err, errcode.ErrIdempotencyInProgress) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ReusedKey", func(t *testing.T) {
		t.Parallel()
		idem, _ := setup(t)
		if _, err := idem.Do(t.Context(), "sales", "k", "h1", ok("A")); err != nil {
			t.Fatal(err)
		}
		if _, err := idem.Do(t.Context(), "sales", "k", "h2", ok("B")); !errors.Is(err, errcode.ErrIdempotencyKeyReused) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("FailureReleases", func(t *testing.T) {
		t.Parallel()
		idem, _ := setup(t)
		if _, err := idem.Do(t.Context(), "sales", "k", "h", func(context.Context) (*status.Result, error) { return nil, errcode.ErrDisconnected }); !errors.Is(err, errcode.ErrDisconnected) {
			t.Fatalf("got %v", err)
		}
		res, err := idem.Do(t.Context(), "sales", "k", "h", ok("RETRY"))
		if err != nil || res.MessageID != "RETRY" || res.Replayed {
			t.Fatalf("retry: %+v %v", res, err)
		}
	})
}
