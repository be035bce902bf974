package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// Replicas starting together on one empty PostgreSQL database: every Open
// succeeds and each migration is applied once (without the advisory lock
// they race on CREATE TABLE and on the migrations table's primary key).
func TestOpen_ConcurrentReplicasMigrateOnce(t *testing.T) {
	t.Parallel()
	url := storetest.NewURL(t, store.Postgres)
	const replicas = 5
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(context.Background(), url, t.TempDir())
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	s, err := store.Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var total, distinct int
	if err := s.DB.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT name) FROM statusflow_migrations`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total == 0 || total != distinct {
		t.Fatalf("%d migration rows for %d migrations", total, distinct)
	}
}

// Idempotency keys with three replicas on one database: a key is claimed by
// exactly one of them, and janitors running everywhere at once remove each
// expired key once and never a live one.
func TestIdempotency_SeveralReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewURL(t, store.Postgres)
	var replicas []*store.Store
	for range 3 {
		s, err := store.Open(ctx, url, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		replicas = append(replicas, s)
	}
	now := time.Now()
	const keys = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := map[string]int{}
	for k := range keys {
		for i, s := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				claimed, _, err := s.IdempotencyClaim(ctx, &store.IdempotencyClaimParams{Instance: "i", Key: fmt.Sprint("k", k), RequestHash: "h",
					ClaimID: fmt.Sprint("replica", i), Now: now, Lease: time.Minute})
				if err != nil {
					t.Error(err)
					return
				}
				if claimed {
					mu.Lock()
					winners[fmt.Sprint("k", k)]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for k := range keys {
		if n := winners[fmt.Sprint("k", k)]; n != 1 {
			t.Fatalf("key k%d claimed by %d replicas", k, n)
		}
	}
	// Half the keys are past their lease at "later"; every replica's janitor
	// runs at once.
	for k := range keys / 2 {
		if _, err := replicas[0].DB.Exec(`UPDATE idempotency_keys SET expires_at = $1 WHERE idem_key = $2`, now.Add(-time.Second).UnixMilli(), fmt.Sprint("k", k)); err != nil {
			t.Fatal(err)
		}
	}
	var deleted atomic.Int64
	for _, s := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.IdempotencyDeleteExpired(ctx, now)
			if err != nil {
				t.Error(err)
			}
			deleted.Add(n)
		}()
	}
	wg.Wait()
	var left int
	replicas[1].DB.QueryRow(`SELECT COUNT(*) FROM idempotency_keys`).Scan(&left)
	if deleted.Load() != keys/2 || left != keys/2 {
		t.Fatalf("janitors removed %d keys, %d left; want %d and %d", deleted.Load(), left, keys/2, keys/2)
	}
}
