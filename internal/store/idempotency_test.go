package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

func TestStore_Idempotency(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.New(t, d)
			ctx := t.Context()
			now := time.Now().UTC().Truncate(time.Millisecond)
			claim := func(key, hash, id string, at time.Time) (bool, *store.IdempotencyRecord) {
				t.Helper()
				ok, rec, err := s.IdempotencyClaim(ctx, &store.IdempotencyClaimParams{Instance: "sales", Key: key, RequestHash: hash, ClaimID: id, Now: at, Lease: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return ok, rec
			}

			t.Run("OneClaimWins", func(t *testing.T) {
				var wg sync.WaitGroup
				var mu sync.Mutex
				wins := 0
				for i := range 10 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if ok, _ := claim("race", "h", string(rune('a'+i)), now); ok {
							mu.Lock()
							wins++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if wins != 1 {
					t.Fatalf("%d winners", wins)
				}
			})
			t.Run("CompleteThenReplay", func(t *testing.T) {
				if ok, _ := claim("k1", "h1", "c1", now); !ok {
					t.Fatal("not claimed")
				}
				if err := s.IdempotencyComplete(ctx, "sales", "k1", "other", []byte(`{}`), now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("someone else's claim completed: %v", err)
				}
				if err := s.IdempotencyComplete(ctx, "sales", "k1", "c1", []byte(`{"messageId":"X"}`), now.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				ok, rec := claim("k1", "h1", "c2", now.Add(time.Minute))
				if ok || rec.State != store.IdempotencyDone || string(rec.Result) != `{"messageId":"X"}` || rec.RequestHash != "h1" {
					t.Fatalf("replay: %v %+v", ok, rec)
				}
				// After the window the key is free again.
				if ok, _ := claim("k1", "h2", "c3", now.Add(2*time.Hour)); !ok {
					t.Fatal("expired key not reclaimed")
				}
			})
			t.Run("ReleaseFreesKey", func(t *testing.T) {
				claim("k2", "h", "c1", now)
				if err := s.IdempotencyRelease(ctx, "sales", "k2", "c1"); err != nil {
					t.Fatal(err)
				}
				if ok, _ := claim("k2", "h", "c2", now); !ok {
					t.Fatal("released key not reclaimed")
				}
			})
			t.Run("StaleLeaseTakenOver", func(t *testing.T) {
				claim("k3", "h", "dead", now)
				if ok, rec := claim("k3", "h", "c2", now.Add(30*time.Second)); ok || rec.State != store.IdempotencyPending {
					t.Fatalf("live lease taken: %v %+v", ok, rec)
				}
				if ok, _ := claim("k3", "h", "c3", now.Add(2*time.Minute)); !ok {
					t.Fatal("stale lease not taken over")
				}
				if n, err := s.IdempotencyDeleteExpired(ctx, now.Add(10*time.Minute)); err != nil || n < 1 {
					t.Fatalf("delete expired: %d %v", n, err)
				}
			})
		})
	}
}
