package status_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

func benchSetup(b *testing.B) (*status.Service, *store.Store, *status.Scheduler) {
	b.Helper()
	st := storetest.New(b, store.SQLite)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	if _, _, err := mgr.Create(context.Background(), "sales", "sandbox", "hash"); err != nil {
		b.Fatal(err)
	}
	svc := status.NewService(mgr, st, nil, events.NewRecorder(st, log), nil, log)
	return svc, st, status.NewScheduler(svc, st, status.SchedulerConfig{}, log)
}

// insertSchedules writes n text publications due at due, in one transaction.
func insertSchedules(b *testing.B, st *store.Store, n int, due time.Time) {
	b.Helper()
	args, _ := json.Marshal(status.PublishArgs{Type: "text", Message: "bench"})
	err := st.Write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		for i := 0; i < n; i++ {
			r := &store.Schedule{ID: fmt.Sprintf("s%06d", i), Instance: "sales", Kind: status.KindPublish, MessageID: status.NewMessageID(),
				Args: string(args), TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", DueAt: due, CreatedAt: time.Now()}
			if err := st.ScheduleInsertTx(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkScheduler_AtRest measures what a running scheduler costs with no
// schedule and with 10,000 pending ones (due in an hour): process CPU per
// second of wall time and live heap. The empty scheduler is the baseline.
func BenchmarkScheduler_AtRest(b *testing.B) {
	_, st, sc := benchSetup(b)
	const window = 3 * time.Second
	measure := func() (cpuPerSec time.Duration, heapBytes uint64) {
		time.Sleep(200 * time.Millisecond)
		c0 := cpuTime()
		time.Sleep(window)
		return (cpuTime() - c0) / time.Duration(window/time.Second), heap()
	}
	if err := sc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer sc.Stop(context.Background())
	for i := 0; i < b.N; i++ {
		cpu0, heap0 := measure()
		insertSchedules(b, st, 10000, time.Now().Add(time.Hour))
		sc.Wake()
		cpu1, heap1 := measure()
		b.Logf("scheduler at rest: 0 pending %v CPU/s, heap %.1f MiB; 10,000 pending %v CPU/s, heap %.1f MiB (+%.2f MiB); CPU ratio %.2f",
			cpu0, float64(heap0)/(1<<20), cpu1, float64(heap1)/(1<<20), (float64(heap1)-float64(heap0))/(1<<20), float64(cpu1)/float64(max(cpu0, time.Microsecond)))
		b.ReportMetric(float64(cpu1.Microseconds()), "cpu-µs/s-10k")
		b.ReportMetric(float64(cpu0.Microseconds()), "cpu-µs/s-0")
		if _, err := st.DB.Exec(`DELETE FROM schedules`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScheduler_Lateness schedules 1,000 text statuses on a sandbox
// instance all due in the same second and prints how late each went out
// (its status row's time minus its due time). The baseline is the same
// 1,000 publications executed at once by 64 goroutines: the scheduler cannot
// beat the time the publications themselves take.
func BenchmarkScheduler_Lateness(b *testing.B) {
	svc, st, sc := benchSetup(b)
	const n = 1000
	for i := 0; i < b.N; i++ {
		// Baseline: the same publications, not scheduled.
		t0 := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for j := 0; j < n; j++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "bare"}}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		bare := time.Since(t0)

		due := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		insertSchedules(b, st, n, due)
		if err := sc.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for {
			var open int
			st.DB.QueryRow(`SELECT COUNT(*) FROM schedules WHERE state IN ('pending', 'running')`).Scan(&open)
			if open == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		sc.Stop(context.Background())
		rows, err := st.DB.Query(`SELECT s.created_at - c.due_at FROM schedules c JOIN statuses s ON s.instance = c.instance AND s.message_id = c.message_id`)
		if err != nil {
			b.Fatal(err)
		}
		var late []int64
		for rows.Next() {
			var ms int64
			rows.Scan(&ms)
			late = append(late, ms)
		}
		rows.Close()
		if len(late) != n {
			b.Fatalf("%d published, want %d", len(late), n)
		}
		sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
		pct := func(p float64) int64 { return late[int(p*float64(len(late)-1))] }
		b.Logf("1,000 due in the same second: lateness ms p0 %d, p50 %d, p90 %d, p99 %d, max %d; bare 1,000 publications took %v (max lateness / bare = %.2f)",
			late[0], pct(.5), pct(.9), pct(.99), late[len(late)-1], bare.Round(time.Millisecond), float64(late[len(late)-1])/float64(bare.Milliseconds()))
		b.ReportMetric(float64(pct(.5)), "p50-ms")
		b.ReportMetric(float64(pct(.99)), "p99-ms")
		b.ReportMetric(float64(late[len(late)-1]), "max-ms")
		st.DB.Exec(`DELETE FROM schedules`)
	}
}
