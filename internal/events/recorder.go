package events

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
)

// TxHook writes work that must exist if and only if the event does (the
// webhook outbox), inside the transaction that stores the event. It reports
// whether it wrote anything, so the OnCommit callbacks run only when there is
// work for them.
type TxHook func(ctx context.Context, tx *sql.Tx, ev *CloudEvent, body []byte) (wrote bool, err error)

// Publisher sends a stored event onwards (NATS). Failures are logged: the
// event is already in the log and the outbox.
type Publisher interface {
	PublishEvent(ctx context.Context, ev *CloudEvent, body []byte) error
}

// Recorder is the core's [status.Recorder]: it stores each outcome in the
// event log (with the TxHooks' rows in the same transaction), then hands its
// event to the publishers.
type Recorder struct {
	store *store.Store
	log   *slog.Logger

	mu         sync.RWMutex
	hooks      []TxHook
	publishers []Publisher
	notify     []func()
}

// NewRecorder returns a recorder on the store.
func NewRecorder(st *store.Store, log *slog.Logger) *Recorder {
	return &Recorder{store: st, log: log}
}

// AddTxHook adds work written in the event's transaction.
func (r *Recorder) AddTxHook(h TxHook) {
	r.mu.Lock()
	r.hooks = append(r.hooks, h)
	r.mu.Unlock()
}

// AddPublisher adds a destination called after the event is committed.
func (r *Recorder) AddPublisher(p Publisher) {
	r.mu.Lock()
	r.publishers = append(r.publishers, p)
	r.mu.Unlock()
}

// OnCommit adds a callback run after each committed event for which a TxHook
// wrote something (e.g. to wake the outbox worker).
func (r *Recorder) OnCommit(f func()) {
	r.mu.Lock()
	r.notify = append(r.notify, f)
	r.mu.Unlock()
}

// Record implements [status.Recorder]: o's event, its status row and
// schedule, and the writes deferred on ctx (store.WithDeferred: the
// sandbox's send) commit in one transaction with the TxHooks' rows. The
// write is queued, so it shares the commit of whatever the request writes
// next (status.accepted commits with status.published); wait waits for the
// commit, then wakes the outbox and publishes.
func (r *Recorder) Record(ctx context.Context, o status.Outcome) (wait func() error) {
	e, err := r.prepare(o.Event, r.outcomeWrite(ctx, o))
	if err != nil {
		return func() error { return err }
	}
	done := r.store.WriteQueued(store.WithWriteLane(ctx, e.lane(), e.row.Instance), e.write)
	var (
		once sync.Once
		res  error
	)
	return func() error {
		once.Do(func() { res = e.finish(ctx, done()) })
		return res
	}
}

// Emit records ev alone and waits for its commit (front doors and tests
// that record an event outside a command).
func (r *Recorder) Emit(ctx context.Context, ev status.Event) error {
	e, err := r.prepare(ev, nil)
	if err != nil {
		return err
	}
	return e.finish(ctx, r.store.WritePipelined(store.WithWriteLane(ctx, e.lane(), e.row.Instance), e.write))
}

// outcomeWrite is what o writes besides its event (nil when nothing): the
// writes deferred on ctx, then the status row and the schedule.
func (r *Recorder) outcomeWrite(ctx context.Context, o status.Outcome) func(ctx context.Context, tx *sql.Tx) error {
	deferred := store.TakeDeferred(ctx)
	if deferred == nil && o.Status == nil && o.Schedule == nil {
		return nil
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		if deferred != nil {
			if err := deferred(ctx, tx); err != nil {
				return err
			}
		}
		if o.Status != nil {
			if err := r.store.StatusRecordTx(ctx, tx, o.Status); err != nil {
				return err
			}
		}
		if o.Schedule != nil {
			return r.store.ScheduleInsertTx(ctx, tx, o.Schedule)
		}
		return nil
	}
}

// emission is one event on its way into the log.
type emission struct {
	r       *Recorder
	ce      *CloudEvent
	body    []byte
	row     *store.Event
	also    func(ctx context.Context, tx *sql.Tx) error
	alsoErr error // also's own failure, the cause a caller gets
	hooks   []TxHook
	pubs    []Publisher
	notify  []func()
	wrote   bool
	traceID string
}

func (r *Recorder) prepare(ev status.Event, also func(ctx context.Context, tx *sql.Tx) error) (*emission, error) {
	ce, err := ToCloudEvent(ev)
	if err != nil {
		return nil, err
	}
	body, err := ce.Encode()
	if err != nil {
		return nil, err
	}
	traceID := ""
	if tc, ok := tracing.Parse(ev.TraceParent); ok {
		traceID = tc.TraceID
	}
	e := &emission{r: r, ce: ce, body: body, also: also, traceID: traceID,
		row: &store.Event{ID: ce.ID, Instance: ev.Instance, Type: ev.Type, TraceID: traceID, Source: sourceOf(ev), Platform: ev.Origin.Platform, Time: ce.Time, Body: string(body)}}
	r.mu.RLock()
	e.hooks, e.pubs, e.notify = r.hooks, r.publishers, r.notify
	r.mu.RUnlock()
	return e, nil
}

// lane is the store's write lane of the event: one per trace, so the events
// of one status (status.accepted, then status.published) commit in the
// order they were queued, while other statuses' commit beside them.
func (e *emission) lane() string {
	if e.traceID != "" {
		return e.traceID
	}
	return e.row.Instance
}

// write is the event's part of a transaction.
func (e *emission) write(ctx context.Context, tx *sql.Tx) error {
	e.wrote, e.alsoErr = false, nil // a batch retry runs this again
	if e.also != nil {
		if err := e.also(ctx, tx); err != nil {
			e.alsoErr = err
			return err
		}
	}
	if err := e.r.store.EventInsertTx(ctx, tx, e.row); err != nil {
		return err
	}
	for _, h := range e.hooks {
		w, err := h(ctx, tx, e.ce, e.body)
		if err != nil {
			return err
		}
		e.wrote = e.wrote || w
	}
	return nil
}

// finish runs after the write's commit (err is its outcome).
func (e *emission) finish(ctx context.Context, err error) error {
	if err != nil && e.alsoErr != nil {
		return e.alsoErr // the cause (a taken schedule, a failed send), not the event log's wrapping of it
	}
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	if e.wrote {
		for _, f := range e.notify {
			f()
		}
	}
	for _, p := range e.pubs {
		if err := p.PublishEvent(ctx, e.ce, e.body); err != nil {
			e.r.log.Error("publish event", "type", e.ce.Type, "instance", e.ce.Instance, "traceId", e.traceID, "err", err)
		}
	}
	return nil
}

// sourceOf is the origin tag of an event: the status's `source` when the data
// has one, else the origin's.
func sourceOf(ev status.Event) string {
	switch d := ev.Data.(type) {
	case status.AcceptedData:
		if d.Source != "" {
			return d.Source
		}
	case status.PublishedData:
		if d.Source != "" {
			return d.Source
		}
	case status.FailedData:
		if d.Source != "" {
			return d.Source
		}
	}
	return ev.Origin.Source
}
