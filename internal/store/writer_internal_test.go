package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A batch that filled the enabled-webhooks memory and then rolled back must
// not leave what it saw remembered.
func TestWebhookMemoryForgetsRolledBackBatches(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := s.WebhookUpsert(ctx, &Webhook{ID: "wh1", Instance: "w", Label: "default", URL: "http://127.0.0.1:1/h", Enabled: true, Secret: "s", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// What a webhook-changing store method does inside its transaction.
		s.forgetWebhooks()
		if _, err := s.TxExec(ctx, tx, `UPDATE webhooks SET enabled = $1 WHERE id = $2`, false, "wh1"); err != nil {
			return err
		}
		if ws, err := s.WebhookListEnabledTx(ctx, tx, "w"); err != nil || len(ws) != 0 {
			return fmt.Errorf("inside the transaction: %d webhooks, %v", len(ws), err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	var ws []*Webhook
	if err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		ws, err = s.WebhookListEnabledTx(ctx, tx, "w")
		return err
	}); err != nil || len(ws) != 1 {
		t.Fatalf("after the rollback: %d enabled webhooks, %v; want 1", len(ws), err)
	}
}

// Under writes that never pause, the WAL must stop growing: SQLite restarts
// it only when a checkpoint has caught up before a write begins, which the
// writer arranges once the WAL is past walRestartFrames (see startCheckpoints).
func TestWALStaysBoundedUnderContinuousWrites(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()
	const rowBytes = 4000
	// A smaller trigger than production's 64 MiB keeps the test short; the
	// mechanism is the same.
	s.walLimit.Store(1024) // frames: 4 MiB
	body := func(i int64) string { return strings.Repeat(string(rune('a'+i%26)), rowBytes) }
	// 512 rows rewritten over and over: the database stays small while the
	// WAL receives a frame or two per write.
	const rows = 512
	for i := range int64(rows) {
		if err := s.SandboxStatusInsert(ctx, &SandboxStatus{Instance: "a", MessageID: fmt.Sprint(i), Type: "text", Message: body(i), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var written, n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(4 * time.Second) // eight checkpoint intervals
	var maxWAL int64
	stop := make(chan struct{})
	watch := make(chan struct{})
	wal := s.path + "-wal"
	go func() {
		defer close(watch)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if fi, err := os.Stat(wal); err == nil && fi.Size() > maxWAL {
				maxWAL = fi.Size()
			}
		}
	}()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := n.Add(1)
				if _, err := s.Exec(ctx, `UPDATE sandbox_statuses SET message = $1 WHERE instance = $2 AND message_id = $3`, body(i), "a", fmt.Sprint(i%rows)); err != nil {
					t.Error(err)
					return
				}
				written.Add(rowBytes)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-watch
	t.Logf("%d MiB written in %d updates; largest WAL %.1f MiB", written.Load()>>20, n.Load(), float64(maxWAL)/(1<<20))
	if written.Load() < 48<<20 {
		t.Skipf("only %d MiB written in 4 s: too slow a machine to tell", written.Load()>>20)
	}
	if maxWAL > written.Load()/2 {
		t.Fatalf("the WAL grew to %.1f MiB while %d MiB were written: it is not restarting", float64(maxWAL)/(1<<20), written.Load()>>20)
	}
}
