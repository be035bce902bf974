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

// Recorder is the core's [status.EventSink]: it stores each event in the
// event log (with the TxHooks' rows in the same transaction), then hands it
// to the publishers.
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

// Emit implements [status.EventSink].
func (r *Recorder) Emit(ctx context.Context, ev status.Event) error {
	return r.EmitWith(ctx, ev, nil)
}

// EmitWith records ev and, in the same transaction, runs also (may be nil):
// the core stores a published status's row this way, so the status table and
// the event log never disagree, and one commit serves both.
func (r *Recorder) EmitWith(ctx context.Context, ev status.Event, also func(ctx context.Context, tx *sql.Tx) error) error {
	e, err := r.prepare(ev, also)
	if err != nil {
		return err
	}
	return e.finish(ctx, r.store.WritePipelined(store.WithWriteLane(ctx, e.lane(), e.row.Instance), e.write))
}

// EmitQueued records ev like EmitWith but returns once its write is queued:
// finish waits for the commit, then wakes the outbox and publishes. The core
// queues status.accepted this way and calls finish before it emits the
// status's next event, which therefore follows it in the log and on NATS.
func (r *Recorder) EmitQueued(ctx context.Context, ev status.Event, also func(ctx context.Context, tx *sql.Tx) error) (finish func() error) {
	e, err := r.prepare(ev, also)
	if err != nil {
		return func() error { return err }
	}
	wait := r.store.WriteQueued(store.WithWriteLane(ctx, e.lane(), e.row.Instance), e.write)
	return func() error { return e.finish(ctx, wait()) }
}

// emission is one event on its way into the log.
type emission struct {
	r       *Recorder
	ce      *CloudEvent
	body    []byte
	row     *store.Event
	also    func(ctx context.Context, tx *sql.Tx) error
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
	e.wrote = false // a batch retry runs this again
	if e.also != nil {
		if err := e.also(ctx, tx); err != nil {
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
