package status_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// clock is a time tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// brokenMedia fails every URL containing "broken" the way an unreachable
// server does, and counts prepares.
type brokenMedia struct {
	fileMedia
	prepares atomic.Int32
}

func (m *brokenMedia) Prepare(ctx context.Context, req status.MediaRequest) (*status.PreparedMedia, error) {
	m.prepares.Add(1)
	if strings.Contains(req.URL, "broken") {
		return nil, &errcode.Error{Code: errcode.CodeMediaDownloadFailed, Message: "Failed to download media from URL"}
	}
	return m.fileMedia.Prepare(ctx, req)
}

type schedBundle struct {
	store *store.Store
	clock *clock
	sched *status.Scheduler
	media *brokenMedia
	mgr   *whatsapp.Manager
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// schedSetup is a service on a real database with the real event recorder
// and a sandbox instance "sales", and a scheduler on a clock the test moves.
func schedSetup(t *testing.T, d store.Dialect) (*status.Service, *schedBundle) {
	t.Helper()
	st := storetest.New(t, d)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &schedBundle{store: st, clock: &clock{t: t0}, media: &brokenMedia{fileMedia: fileMedia{t.TempDir()}}}
	sandbox := whatsapp.NewSandbox(st)
	sandbox.SetClock(b.clock.Now) // a status is sent at the test's time
	mgr := whatsapp.NewManager(st, log, sandbox)
	if _, _, err := mgr.Create(context.Background(), "sales", "sandbox", "hash-"+t.Name()); err != nil {
		t.Fatal(err)
	}
	b.mgr = mgr
	svc := status.NewService(mgr, st, b.media, events.NewRecorder(st, log), nil, log)
	svc.SetClock(b.clock.Now)
	mgr.OnReceipt = func(r whatsapp.Receipt) { svc.RecordReceipt(context.Background(), r) }
	b.sched = status.NewScheduler(svc, st, status.SchedulerConfig{Grace: 5 * time.Minute, PrepareAhead: time.Minute, Lease: time.Minute}, log)
	b.sched.Now = b.clock.Now
	t.Cleanup(func() { b.sched.Stop(context.Background()) })
	return svc, b
}

func eventTypes(t *testing.T, st *store.Store, traceID string) []string {
	t.Helper()
	list, err := st.EventList(context.Background(), &store.EventListParams{Instance: "sales", TraceID: traceID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list {
		out = append(out, e.Type)
	}
	return out
}

func sandboxCount(t *testing.T, st *store.Store) int {
	t.Helper()
	list, err := st.SandboxStatusList(context.Background(), "sales", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func schedule(t *testing.T, svc *status.Service, at time.Time, a status.PublishArgs) *status.Result {
	t.Helper()
	a.PublishAt = at.Format(time.RFC3339Nano)
	res, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: a, Origin: status.Origin{Platform: "n8n", WorkflowID: "wf"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Scheduled || res.ScheduleID == "" || res.MessageID == "" {
		t.Fatalf("not scheduled: %+v", res)
	}
	return res
}

func TestScheduler(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			t.Run("PublishedAtItsTimeOnce", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				res := schedule(t, svc, t0.Add(10*time.Minute), status.PublishArgs{Type: "text", Message: "later", Source: "crm"})
				b.clock.Set(t0.Add(9 * time.Minute))
				b.sched.RunDue(ctx)
				if n := sandboxCount(t, b.store); n != 0 {
					t.Fatalf("published %d before its time", n)
				}
				b.clock.Set(t0.Add(10 * time.Minute))
				b.sched.RunDue(ctx)
				b.sched.RunDue(ctx)
				list, _ := b.store.SandboxStatusList(ctx, "sales", 10)
				if len(list) != 1 || list[0].MessageID != res.MessageID {
					t.Fatalf("sandbox %+v, want one status %s", list, res.MessageID)
				}
				row, err := b.store.ScheduleGet(ctx, "sales", res.ScheduleID)
				if err != nil || row.State != store.ScheduleDone {
					t.Fatalf("schedule %+v %v", row, err)
				}
				got := strings.Join(eventTypes(t, b.store, res.TraceID), ",")
				if got != "status.scheduled,status.accepted,status.published" {
					t.Fatalf("trace %s events: %s", res.TraceID, got)
				}
			})
			t.Run("ExpireAfterRevokes", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				res, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "now", ExpireAfter: "90m"}})
				if err != nil {
					t.Fatal(err)
				}
				if res.Scheduled || res.ExpireAt == nil || !res.ExpireAt.Equal(res.Timestamp.Add(90*time.Minute)) {
					t.Fatalf("result %+v", res)
				}
				b.clock.Set(t0.Add(89 * time.Minute))
				b.sched.RunDue(ctx)
				if st, _ := b.store.StatusGet(ctx, "sales", res.MessageID); st.RevokedAt != nil {
					t.Fatal("revoked early")
				}
				b.clock.Set(t0.Add(91 * time.Minute))
				b.sched.RunDue(ctx)
				if st, _ := b.store.StatusGet(ctx, "sales", res.MessageID); st.RevokedAt == nil {
					t.Fatal("not revoked")
				}
				got := strings.Join(eventTypes(t, b.store, res.TraceID), ",")
				if got != "status.accepted,status.published,status.scheduled,status.deleted" {
					t.Fatalf("events: %s", got)
				}
			})
			t.Run("ScheduledWithExpiry", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				res := schedule(t, svc, t0.Add(time.Hour), status.PublishArgs{Type: "text", Message: "x", ExpireAfter: "2h"})
				b.clock.Set(t0.Add(time.Hour))
				b.sched.RunDue(ctx)
				b.clock.Set(t0.Add(3*time.Hour + time.Second))
				b.sched.RunDue(ctx)
				if st, err := b.store.StatusGet(ctx, "sales", res.MessageID); err != nil || st.RevokedAt == nil {
					t.Fatalf("status %+v %v", st, err)
				}
			})
			t.Run("MissedPastGraceFails", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				late := schedule(t, svc, t0.Add(time.Minute), status.PublishArgs{Type: "text", Message: "missed"})
				inGrace := schedule(t, svc, t0.Add(50*time.Minute), status.PublishArgs{Type: "text", Message: "in grace"})
				b.clock.Set(t0.Add(54 * time.Minute)) // "down" from t0 until now
				b.sched.RunDue(ctx)
				row, _ := b.store.ScheduleGet(ctx, "sales", late.ScheduleID)
				if row.State != store.ScheduleFailed || row.ErrStatus != string(errcode.CodeScheduleMissed) || !strings.Contains(row.ErrMessage, "grace window of 5m0s") {
					t.Fatalf("missed row %+v", row)
				}
				if got := strings.Join(eventTypes(t, b.store, late.TraceID), ","); got != "status.scheduled,status.failed" {
					t.Fatalf("missed events: %s", got)
				}
				if row, _ := b.store.ScheduleGet(ctx, "sales", inGrace.ScheduleID); row.State != store.ScheduleDone {
					t.Fatalf("in-grace row %+v", row)
				}
				if n := sandboxCount(t, b.store); n != 1 {
					t.Fatalf("published %d, want 1", n)
				}
			})
			t.Run("BrokenMediaFailsAhead", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				bad := schedule(t, svc, t0.Add(10*time.Minute), status.PublishArgs{Type: "image", MediaURL: "http://127.0.0.1:1/broken.jpg"})
				good := schedule(t, svc, t0.Add(10*time.Minute), status.PublishArgs{Type: "image", MediaURL: "http://127.0.0.1:1/fine.jpg"})
				b.clock.Set(t0.Add(9*time.Minute + 30*time.Second)) // inside PrepareAhead
				b.sched.RunDue(ctx)
				row, _ := b.store.ScheduleGet(ctx, "sales", bad.ScheduleID)
				if row.State != store.ScheduleFailed || row.ErrStatus != "media_download_failed" {
					t.Fatalf("bad row %+v", row)
				}
				if got := strings.Join(eventTypes(t, b.store, bad.TraceID), ","); got != "status.scheduled,status.failed" {
					t.Fatalf("bad events: %s", got)
				}
				b.clock.Set(t0.Add(10 * time.Minute))
				b.sched.RunDue(ctx)
				if row, _ := b.store.ScheduleGet(ctx, "sales", good.ScheduleID); row.State != store.ScheduleDone {
					t.Fatalf("good row %+v", row)
				}
				// Each URL fetched once: the good one's prepared media was used at its time.
				if n := b.media.prepares.Load(); n != 2 {
					t.Fatalf("prepares = %d, want 2", n)
				}
			})
			t.Run("Cancel", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				res := schedule(t, svc, t0.Add(time.Hour), status.PublishArgs{Type: "text", Message: "never"})
				c, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.CancelArgs{ScheduleID: res.ScheduleID}})
				if err != nil || c.MessageID != res.MessageID || c.TraceID != res.TraceID {
					t.Fatalf("cancel %+v %v", c, err)
				}
				_, err = svc.Execute(ctx, status.Command{Instance: "sales", Args: status.CancelArgs{ScheduleID: res.ScheduleID}})
				if se := errcode.AsError(err); se.Code != errcode.CodeScheduleNotPending || se.Message != "Schedule is already cancelled" {
					t.Fatalf("second cancel: %v", err)
				}
				if _, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.CancelArgs{ScheduleID: "nope"}}); !errors.Is(err, errcode.ErrScheduleNotFound) {
					t.Fatalf("unknown: %v", err)
				}
				b.clock.Set(t0.Add(time.Hour))
				b.sched.RunDue(ctx)
				if n := sandboxCount(t, b.store); n != 0 {
					t.Fatalf("published %d cancelled statuses", n)
				}
				if got := strings.Join(eventTypes(t, b.store, res.TraceID), ","); got != "status.scheduled,status.cancelled" {
					t.Fatalf("events: %s", got)
				}
			})
			t.Run("CancelRacesDueTime", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				const n = 40
				ids := make([]string, n)
				for i := range ids {
					ids[i] = schedule(t, svc, t0.Add(time.Minute), status.PublishArgs{Type: "text", Message: "race"}).ScheduleID
				}
				b.clock.Set(t0.Add(time.Minute))
				var cancelled atomic.Int32
				var wg sync.WaitGroup
				for _, id := range ids {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.CancelArgs{ScheduleID: id}}); err == nil {
							cancelled.Add(1)
						} else if errcode.AsError(err).Code != errcode.CodeScheduleNotPending {
							t.Errorf("cancel: %v", err)
						}
					}()
				}
				b.sched.RunDue(ctx)
				wg.Wait()
				b.sched.RunDue(ctx)
				done := 0
				for _, id := range ids {
					row, _ := b.store.ScheduleGet(ctx, "sales", id)
					switch row.State {
					case store.ScheduleDone:
						done++
					case store.ScheduleCancelled:
					default:
						t.Fatalf("row left %s", row.State)
					}
				}
				if done+int(cancelled.Load()) != n || sandboxCount(t, b.store) != done {
					t.Fatalf("done %d + cancelled %d != %d, sandbox %d", done, cancelled.Load(), n, sandboxCount(t, b.store))
				}
			})
			t.Run("SentBeforeCrashIsNotSentAgain", func(t *testing.T) {
				t.Parallel()
				svc, b := schedSetup(t, d)
				ctx := context.Background()
				res := schedule(t, svc, t0.Add(time.Minute), status.PublishArgs{Type: "text", Message: "once"})
				// A scheduler claims the row, sends, and dies before finishing it.
				rows, err := b.store.ScheduleClaimDue(ctx, &store.ScheduleClaimParams{Now: t0.Add(time.Minute), LockedUntil: t0.Add(2 * time.Minute), Token: "dead", Limit: 10})
				if err != nil || len(rows) != 1 {
					t.Fatalf("claim %v %v", rows, err)
				}
				if _, err := svc.Execute(ctx, status.Command{Instance: "sales", MessageID: res.MessageID, Args: status.PublishArgs{Type: "text", Message: "once"}}); err != nil {
					t.Fatal(err)
				}
				b.clock.Set(t0.Add(90 * time.Second)) // lease still held
				b.sched.RunDue(ctx)
				if row, _ := b.store.ScheduleGet(ctx, "sales", res.ScheduleID); row.State != store.ScheduleRunning {
					t.Fatalf("taken during the lease: %+v", row)
				}
				b.clock.Set(t0.Add(2*time.Minute + time.Second))
				b.sched.RunDue(ctx)
				row, _ := b.store.ScheduleGet(ctx, "sales", res.ScheduleID)
				if row.State != store.ScheduleDone || row.Attempt != 2 || sandboxCount(t, b.store) != 1 {
					t.Fatalf("row %+v, sandbox %d", row, sandboxCount(t, b.store))
				}
			})
			t.Run("Validation", func(t *testing.T) {
				t.Parallel()
				svc, _ := schedSetup(t, d)
				for _, c := range []struct{ at, exp, want string }{
					{t0.Add(31 * 24 * time.Hour).Format(time.RFC3339), "", "Invalid request body: publishAt must be at most 30 days ahead"},
					{t0.Add(-time.Hour).Format(time.RFC3339), "", "Invalid request body: publishAt is in the past"},
					{"", "24h", "Invalid request body: expireAfter must be a duration under 24h, such as 90m or 12h"},
				} {
					_, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "x", PublishAt: c.at, ExpireAfter: c.exp}})
					if se := errcode.AsError(err); se.Code != errcode.CodeInvalid || se.Message != c.want {
						t.Errorf("%+v: %v", c, err)
					}
				}
			})
		})
	}
}

// TestScheduler_Replicas runs three schedulers, each with its own store
// handle on one PostgreSQL database (three replicas), over the same 150 due
// schedules: each status goes out once.
func TestScheduler_Replicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewURL(t, store.Postgres)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var scheds []*status.Scheduler
	var first *status.Service
	var st0 *store.Store
	for i := 0; i < 3; i++ {
		st, err := store.Open(ctx, url, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
		if i == 0 {
			if _, _, err := mgr.Create(ctx, "sales", "sandbox", "hash"); err != nil {
				t.Fatal(err)
			}
			st0 = st
		} else if err := mgr.Start(ctx); err != nil {
			t.Fatal(err)
		}
		svc := status.NewService(mgr, st, nil, events.NewRecorder(st, log), nil, log)
		sc := status.NewScheduler(svc, st, status.SchedulerConfig{Batch: 7}, log)
		t.Cleanup(func() { sc.Stop(ctx) })
		if first == nil {
			first = svc
		}
		scheds = append(scheds, sc)
	}
	const n = 150
	at := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano) // due now, within the past tolerance
	for i := 0; i < n; i++ {
		if _, err := first.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "r", PublishAt: at}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, sc := range scheds {
		wg.Add(1)
		go func() { defer wg.Done(); sc.RunDue(ctx) }()
	}
	wg.Wait()
	done, err := st0.ScheduleList(ctx, &store.ScheduleListParams{Instance: "sales", States: []string{store.ScheduleDone}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	others, _ := st0.ScheduleList(ctx, &store.ScheduleListParams{Instance: "sales", States: []string{store.SchedulePending, store.ScheduleRunning, store.ScheduleFailed}, Limit: 1000})
	if len(done) != n || len(others) != 0 || sandboxCount(t, st0) != n {
		for _, r := range others {
			t.Logf("other %s state %s attempt %d err %s %s due %v", r.ID, r.State, r.Attempt, r.ErrStatus, r.ErrMessage, r.DueAt)
		}
		t.Fatalf("done %d, others %d, sandbox %d; want %d done and published once each", len(done), len(others), sandboxCount(t, st0), n)
	}
	for _, r := range done {
		if r.Attempt != 1 {
			t.Fatalf("schedule %s claimed %d times", r.ID, r.Attempt)
		}
	}
}
