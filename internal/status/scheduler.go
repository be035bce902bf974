package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// Scheduler defaults. Each is also a STATUSFLOW_SCHEDULE_… setting.
const (
	// ScheduleGraceDefault: a publication found due this long after its time
	// (statusflow was down) still runs; later it fails as schedule_missed.
	ScheduleGraceDefault = 5 * time.Minute
	// SchedulePrepareAheadDefault: media of a scheduled status is fetched
	// and converted this long before its time.
	SchedulePrepareAheadDefault = time.Minute
	// ScheduleLeaseDefault: a claimed schedule belongs to its scheduler this
	// long; past it another replica (or this one after a restart) takes it.
	ScheduleLeaseDefault = 5 * time.Minute
	// SchedulePollDefault: the longest the scheduler sleeps without looking
	// at the table (rows other replicas inserted wake nobody here).
	SchedulePollDefault = time.Second
)

// SchedulerConfig is the scheduler's policy.
type SchedulerConfig struct {
	// Grace defaults to [ScheduleGraceDefault].
	Grace time.Duration
	// PrepareAhead defaults to [SchedulePrepareAheadDefault].
	PrepareAhead time.Duration
	// Lease defaults to [ScheduleLeaseDefault].
	Lease time.Duration
	// Poll defaults to [SchedulePollDefault].
	Poll time.Duration
	// Batch is how many rows one claim takes. Defaults to 200.
	Batch int
	// Workers is how many scheduled commands run at once. Defaults to 64.
	Workers int
}

// WithDefaults returns a copy with zero fields set to their defaults.
func (c SchedulerConfig) WithDefaults() SchedulerConfig {
	if c.Grace <= 0 {
		c.Grace = ScheduleGraceDefault
	}
	if c.PrepareAhead <= 0 {
		c.PrepareAhead = SchedulePrepareAheadDefault
	}
	if c.Lease <= 0 {
		c.Lease = ScheduleLeaseDefault
	}
	if c.Poll <= 0 {
		c.Poll = SchedulePollDefault
	}
	if c.Batch <= 0 {
		c.Batch = 200
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	return c
}

// schedulerStore is what the scheduler needs from the store.
type schedulerStore interface {
	ScheduleNextWake(ctx context.Context, prepareAhead time.Duration) (time.Time, bool, error)
	ScheduleClaimDue(ctx context.Context, p *store.ScheduleClaimParams) ([]*store.Schedule, error)
	ScheduleClaimPrepare(ctx context.Context, until, now time.Time, limit int) ([]*store.Schedule, error)
	ScheduleFinish(ctx context.Context, p *store.ScheduleFinishParams) error
}

// Scheduler runs schedules when they are due. The rows live in the
// database and are claimed with a lease (as the webhook outbox's are), so
// any number of replicas can run a scheduler: each row runs on one of them,
// and a row whose scheduler died is taken again once its lease ends.
//
// At rest it costs one indexed MIN query per Poll and a timer: no goroutine
// or memory per pending schedule.
type Scheduler struct {
	svc   *Service
	store schedulerStore
	cfg   SchedulerConfig
	log   *slog.Logger
	// Now is the clock; tests replace it and call RunDue.
	Now func() time.Time

	wake chan struct{}
	sem  chan struct{}

	mu       sync.Mutex
	prepared map[string]*PreparedMedia // message id → media prepared ahead
	pending  sync.WaitGroup            // prepares in flight

	stop func()
}

// NewScheduler returns the scheduler of svc's schedules and lets svc wake it.
func NewScheduler(svc *Service, st schedulerStore, cfg SchedulerConfig, log *slog.Logger) *Scheduler {
	cfg = cfg.WithDefaults()
	sc := &Scheduler{svc: svc, store: st, cfg: cfg, log: log, Now: func() time.Time { return time.Now().UTC() },
		wake: make(chan struct{}, 1), sem: make(chan struct{}, cfg.Workers), prepared: map[string]*PreparedMedia{}}
	svc.scheduler = sc
	return sc
}

// Wake makes the loop look at the table now (a schedule was added).
func (sc *Scheduler) Wake() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// Start runs the loop until Stop.
func (sc *Scheduler) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc.loop(ctx)
	}()
	sc.stop = func() { cancel(); <-done; sc.pending.Wait() }
	return nil
}

// Stop ends the loop and waits for running commands. A second Stop is harmless.
func (sc *Scheduler) Stop(context.Context) error {
	if sc.stop != nil {
		sc.stop()
		sc.stop = nil
	}
	sc.mu.Lock()
	for id, pm := range sc.prepared {
		pm.Cleanup()
		delete(sc.prepared, id)
	}
	sc.mu.Unlock()
	return nil
}

func (sc *Scheduler) loop(ctx context.Context) {
	sc.runDue(ctx, false) // whatever came due while no scheduler ran
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		// At rest this is all the loop does: three LIMIT 1 index reads, then
		// sleep until the next due time (at most Poll, for rows other
		// replicas insert). It claims only when something is due.
		wait := sc.cfg.Poll
		if next, ok, err := sc.store.ScheduleNextWake(ctx, sc.cfg.PrepareAhead); err != nil {
			if ctx.Err() != nil {
				return
			}
			sc.log.Warn("scheduler: next due time", "err", err)
		} else if ok {
			if d := next.Sub(sc.Now()); d <= 0 {
				sc.runDue(ctx, false)
				wait = 10 * time.Millisecond // look again soon, without spinning on a row that cannot run
			} else {
				wait = min(wait, d)
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-sc.wake:
		case <-t.C:
		}
	}
}

// RunDue does, once, everything due at Now: prepares media of schedules due
// within PrepareAhead and runs the schedules whose time has come (and those
// whose scheduler's lease ran out), and returns when all of it is finished.
// The loop calls it on every wake; tests call it with their own clock.
func (sc *Scheduler) RunDue(ctx context.Context) { sc.runDue(ctx, true) }

func (sc *Scheduler) runDue(ctx context.Context, wait bool) {
	now := sc.Now()
	if rows, err := sc.store.ScheduleClaimPrepare(ctx, now.Add(sc.cfg.PrepareAhead), now, sc.cfg.Batch); err != nil {
		if ctx.Err() == nil {
			sc.log.Warn("scheduler: claim media to prepare", "err", err)
		}
	} else {
		for _, r := range rows {
			sc.pending.Add(1)
			go func() {
				defer sc.pending.Done()
				sc.prepare(ctx, r)
			}()
		}
	}
	var running sync.WaitGroup
	for ctx.Err() == nil {
		now := sc.Now()
		token := uuid.NewString()
		rows, err := sc.store.ScheduleClaimDue(ctx, &store.ScheduleClaimParams{Now: now, LockedUntil: now.Add(sc.cfg.Lease), Token: token, Limit: sc.cfg.Batch})
		if err != nil {
			if ctx.Err() == nil {
				sc.log.Warn("scheduler: claim due schedules", "err", err)
			}
			break
		}
		for _, r := range rows {
			r.LockToken = token
			sc.sem <- struct{}{}
			running.Add(1)
			go func() {
				defer func() { <-sc.sem; running.Done() }()
				sc.run(context.WithoutCancel(ctx), r)
			}()
		}
		// Only an empty claim ends the round. A short one does not mean
		// nothing is left: on PostgreSQL a claim that raced another
		// replica's for the same rows gets only those it won (the loser's
		// UPDATE re-checks the state after the winner commits), while the
		// rest are still pending. CI saw three replicas all stop on short
		// batches with 136 of 150 due rows left. The round ends once a
		// claim finds nothing; rows held by another replica's claim are
		// that replica's to run, and it loops again.
		if len(rows) == 0 {
			break
		}
	}
	running.Wait()
	if wait {
		sc.pending.Wait()
	}
}

// prepare fetches and converts a scheduled status's media ahead of its time.
// A URL that cannot be used fails the schedule now, with status.failed on
// its trace, instead of at the minute it was due.
func (sc *Scheduler) prepare(ctx context.Context, r *store.Schedule) {
	if r.Kind != KindPublish || sc.svc.media == nil {
		return
	}
	var a PublishArgs
	if err := json.Unmarshal([]byte(r.Args), &a); err != nil || a.Type == TypeText || a.MediaURL == "" {
		return
	}
	ctx, _, endTrace := scheduleSpan(ctx, r, "status.schedule.prepare")
	defer endTrace(nil)
	mctx, end := step(ctx, stageMediaPrepare)
	pm, err := sc.svc.media.Prepare(mctx, mediaRequest(r.Instance, a))
	end(err)
	if err != nil {
		e := errcode.AsError(err)
		ferr := sc.store.ScheduleFinish(context.WithoutCancel(ctx), &store.ScheduleFinishParams{ID: r.ID, State: store.ScheduleFailed,
			ErrStatus: string(e.Code), ErrMessage: e.Message, Now: sc.Now()})
		if errors.Is(ferr, store.ErrNotFound) {
			return // cancelled meanwhile
		}
		metrics.Schedule(r.Kind, "failed")
		sc.failed(ctx, r, a, e)
		return
	}
	sc.mu.Lock()
	if old := sc.prepared[r.MessageID]; old != nil {
		old.Cleanup()
	}
	sc.prepared[r.MessageID] = pm
	sc.mu.Unlock()
}

// failed emits status.failed for a schedule that failed outside the core
// (while preparing, or missed), in the schedule's span (ctx, from
// scheduleSpan).
func (sc *Scheduler) failed(ctx context.Context, r *store.Schedule, a PublishArgs, e *errcode.Error) {
	var origin Origin
	_ = json.Unmarshal([]byte(r.Origin), &origin)
	tc, ok := tracing.From(ctx)
	if !ok {
		tc = tracing.New()
	}
	source := a.Source
	if source == "" {
		source = origin.Source
	}
	sc.svc.emit(ctx, Event{Type: EventStatusFailed, Instance: r.Instance, TraceParent: tc.String(), Origin: origin,
		Data: FailedData{MessageID: r.MessageID, MessageType: a.Type, Source: source, TraceID: tc.TraceID, Status: string(e.Code), Message: e.Message}})
}

// dropPrepared forgets (and removes) media prepared for a cancelled schedule.
func (sc *Scheduler) dropPrepared(messageID string) {
	sc.mu.Lock()
	pm := sc.prepared[messageID]
	delete(sc.prepared, messageID)
	sc.mu.Unlock()
	pm.Cleanup()
}

func (sc *Scheduler) takePrepared(messageID string) *PreparedMedia {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	pm := sc.prepared[messageID]
	delete(sc.prepared, messageID)
	return pm
}

// run executes one claimed schedule through the core, on the trace of the
// request that scheduled it, with the message id fixed when it was scheduled.
//
// Exactly once: a row is claimed by one scheduler (the claim's UPDATE tests
// the state). If its process dies after the send and before the row is
// finished, the row is claimed again when its lease ends; the status is then
// found already recorded under its message id and the row is finished
// without sending again. (The sandbox records the send, the status row and
// status.published in one transaction, so this is exact; for whatsmeow the
// status row follows the send, and a crash between them sends the same
// message id twice, which WhatsApp clients take as one message.)
func (sc *Scheduler) run(ctx context.Context, r *store.Schedule) {
	now := sc.Now()
	late := now.Sub(r.DueAt)
	metrics.ScheduleLateness(late)
	var origin Origin
	_ = json.Unmarshal([]byte(r.Origin), &origin)
	finish := func(state string, e *errcode.Error) {
		p := &store.ScheduleFinishParams{ID: r.ID, Token: r.LockToken, State: state, Now: sc.Now()}
		if e != nil {
			p.ErrStatus, p.ErrMessage = string(e.Code), e.Message
		}
		if err := sc.store.ScheduleFinish(ctx, p); err != nil && !errors.Is(err, store.ErrNotFound) {
			sc.log.Error("scheduler: finish schedule", "id", r.ID, "err", err)
		}
		metrics.Schedule(r.Kind, state)
	}
	ctx, tc, endTrace := scheduleSpan(ctx, r, "status.schedule.run")
	defer endTrace(nil)
	cmd := Command{Instance: r.Instance, Origin: origin, TraceParent: tc.String(), MessageID: r.MessageID}
	switch r.Kind {
	case KindPublish:
		var a PublishArgs
		if err := json.Unmarshal([]byte(r.Args), &a); err != nil {
			finish(store.ScheduleFailed, errcode.Wrap(errcode.CodeInternal, "unreadable schedule", err))
			return
		}
		if st, err := sc.svc.store.StatusGet(ctx, r.Instance, r.MessageID); err == nil && st != nil {
			finish(store.ScheduleDone, nil) // sent before a crash: see above
			return
		}
		if late > sc.cfg.Grace {
			e := errcode.Errorf(errcode.CodeScheduleMissed, "Scheduled for %s but statusflow was not running then; found %s late, past the grace window of %s",
				r.DueAt.Format(time.RFC3339), late.Round(time.Second), sc.cfg.Grace)
			sc.takePrepared(r.MessageID).Cleanup()
			finish(store.ScheduleFailed, e)
			sc.failed(ctx, r, a, e)
			return
		}
		if sc.waitForSession(ctx, r, late) {
			return
		}
		cmd.Args = a
		if pm := sc.takePrepared(r.MessageID); pm != nil {
			ctx = withPrepared(ctx, pm)
		}
	case KindDelete:
		// A revoke runs however late: the user asked for the status to go.
		var a DeleteArgs
		if err := json.Unmarshal([]byte(r.Args), &a); err != nil {
			finish(store.ScheduleFailed, errcode.Wrap(errcode.CodeInternal, "unreadable schedule", err))
			return
		}
		cmd.Args = a
	default:
		finish(store.ScheduleFailed, errcode.Errorf(errcode.CodeInternal, "unknown schedule kind %q", r.Kind))
		return
	}
	_, err := sc.svc.Execute(ctx, cmd)
	if err != nil {
		e := errcode.AsError(err)
		if r.Kind == KindDelete && e.Code == errcode.CodeMessageNotFound {
			finish(store.ScheduleDone, nil) // deleted by hand before it expired
			return
		}
		finish(store.ScheduleFailed, e)
		return
	}
	finish(store.ScheduleDone, nil)
}

// schedulerRetry is how soon a schedule whose instance is not connected
// yet (a whatsmeow session reconnecting after a restart) is tried again.
const schedulerRetry = 2 * time.Second

// waitForSession puts a due publication back for a little while when its
// instance exists but is not connected, as long as the grace window lasts:
// after a restart whatsmeow sessions take a few seconds to reconnect, and
// failing then would lose schedules that were due during the downtime.
func (sc *Scheduler) waitForSession(ctx context.Context, r *store.Schedule, late time.Duration) bool {
	sess, err := sc.svc.sessions.Session(ctx, r.Instance)
	if err != nil || sess.State() == whatsapp.StateConnected || late+schedulerRetry > sc.cfg.Grace {
		return false
	}
	rs, ok := sc.store.(interface {
		ScheduleRetryAt(ctx context.Context, id, token string, at time.Time) error
	})
	if !ok {
		return false
	}
	if err := rs.ScheduleRetryAt(ctx, r.ID, r.LockToken, sc.Now().Add(schedulerRetry)); err != nil {
		sc.log.Warn("scheduler: retry later", "id", r.ID, "err", err)
		return false
	}
	return true
}

// scheduleSpan starts the span a schedule's work runs in when it is due: a
// child of the traceparent stored with it (the request that scheduled it),
// or the root of a new trace. Its events and the command it runs join it.
func scheduleSpan(ctx context.Context, r *store.Schedule, name string) (context.Context, tracing.Context, func(error)) {
	ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{}) // never the scheduler loop's trace
	if p, ok := tracing.Parse(r.TraceParent); ok {
		ctx = tracing.With(ctx, p)
	}
	ctx, end := tracing.Start(ctx, name, attribute.String("statusflow.schedule.id", r.ID), attribute.String("statusflow.schedule.kind", r.Kind))
	tc, _ := tracing.From(ctx)
	return ctx, tc, end
}

func mediaRequest(instance string, a PublishArgs) MediaRequest {
	return MediaRequest{Instance: instance, Type: a.Type, URL: a.MediaURL, MimeType: a.MimeType, FileName: a.FileName, Voice: sendAsVoice(a), Duration: a.Duration, Waveform: a.Waveform}
}

type preparedKey struct{}

// withPrepared hands media prepared ahead to the publish it belongs to.
func withPrepared(ctx context.Context, pm *PreparedMedia) context.Context {
	return context.WithValue(ctx, preparedKey{}, pm)
}

// preparedFrom returns media prepared ahead for this publish, if any.
func preparedFrom(ctx context.Context) (*PreparedMedia, error) {
	pm, _ := ctx.Value(preparedKey{}).(*PreparedMedia)
	return pm, nil
}

// String is for logs.
func (c SchedulerConfig) String() string {
	return fmt.Sprintf("grace=%s prepareAhead=%s lease=%s poll=%s", c.Grace, c.PrepareAhead, c.Lease, c.Poll)
}
