package store

import (
	"context"
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
