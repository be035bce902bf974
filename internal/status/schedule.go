package status

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// Scheduling limits (API.md §10, issue 18).
const (
	// MaxScheduleAhead is how far ahead publishAt may be.
	MaxScheduleAhead = 30 * 24 * time.Hour
	// MaxExpireAfter bounds expireAfter: a status lives 24 h anyway.
	MaxExpireAfter = 24 * time.Hour
	// schedulePastTolerance lets a publishAt a little in the past (clock
	// skew between the caller and us) through; it then runs at once.
	schedulePastTolerance = time.Minute
)

// scheduleStore keeps schedules.
type scheduleStore interface {
	ScheduleCancel(ctx context.Context, instance, id string, now time.Time) (*store.Schedule, bool, error)
}

// timing is what publishAt and expireAfter of a publish request ask for.
type timing struct {
	publishAt time.Time // zero: publish now
	expire    time.Duration
}

// parseTiming checks publishAt and expireAfter against the clock. Their
// syntax is the schema's (date-time, a duration pattern); what depends on
// the time of the request is checked here.
func (s *Service) parseTiming(a PublishArgs) (timing, error) {
	var t timing
	if a.PublishAt != "" {
		at, err := time.Parse(time.RFC3339Nano, a.PublishAt)
		if err != nil {
			return t, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: publishAt must be an RFC 3339 date-time")
		}
		now := s.now()
		if at.Before(now.Add(-schedulePastTolerance)) {
			return t, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: publishAt is in the past")
		}
		if at.After(now.Add(MaxScheduleAhead)) {
			return t, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: publishAt must be at most 30 days ahead")
		}
		t.publishAt = at.UTC()
	}
	if a.ExpireAfter != "" {
		d, err := time.ParseDuration(a.ExpireAfter)
		if err != nil || d <= 0 || d >= MaxExpireAfter {
			return t, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: expireAfter must be a duration under 24h, such as 90m or 12h")
		}
		t.expire = d
	}
	return t, nil
}

// schedulePublish stores a publication for later: the message id is fixed
// now, status.scheduled commits with the row, and the answer says when.
func (s *Service) schedulePublish(ctx context.Context, cmd Command, a PublishArgs, t timing, tc tracing.Context) (*Result, error) {
	if _, err := s.sessions.Session(ctx, cmd.Instance); errors.Is(err, store.ErrNotFound) {
		return nil, errcode.ErrInstanceNotFound
	} else if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	if a.Type == TypeText { // a text that cannot be built fails now, not at its time
		if _, err := whatsapp.BuildText(whatsapp.TextStatus{Text: a.Message, BackgroundColor: a.BackgroundColor, Font: a.Font}); err != nil {
			return nil, errcode.Errorf(errcode.CodeInvalid, "%s", err)
		}
	}
	id := cmd.MessageID
	if id == "" {
		id = NewMessageID()
	}
	source := a.Source
	if source == "" {
		source = cmd.Origin.Source
	}
	run := a
	run.PublishAt = ""
	args, _ := json.Marshal(run)
	origin, _ := json.Marshal(cmd.Origin)
	row := &store.Schedule{ID: newScheduleID(), Instance: cmd.Instance, Kind: KindPublish, MessageID: id, Args: string(args), Origin: string(origin),
		TraceParent: tc.String(), DueAt: t.publishAt, ExpireAfter: t.expire, CreatedAt: s.now()}
	ev := Event{Type: EventStatusScheduled, Instance: cmd.Instance, TraceParent: tc.String(), Origin: cmd.Origin,
		Data: ScheduledData{ScheduleID: row.ID, Action: ActionPublish, MessageID: id, MessageType: a.Type, DueAt: row.DueAt,
			ExpireAfter: a.ExpireAfter, Source: source, TraceID: tc.TraceID}}
	if err := s.insertSchedule(ctx, row, ev); err != nil {
		return nil, err
	}
	metrics.Schedule(KindPublish, "scheduled")
	s.wakeScheduler()
	at := row.DueAt
	res := &Result{MessageID: id, MessageType: a.Type, Chat: Chat{JID: StatusBroadcastJID}, Timestamp: row.CreatedAt, Source: source,
		TraceID: tc.TraceID, ScheduleID: row.ID, Scheduled: true, PublishAt: &at}
	if t.expire > 0 {
		exp := at.Add(t.expire)
		res.ExpireAt = &exp
	}
	if !cmd.Origin.IsZero() {
		o := cmd.Origin
		res.Origin = &o
	}
	return res, nil
}

// scheduleExpiry schedules the revoke of a status that just went out with
// expireAfter. A second call for the same status (a re-run schedule) finds
// the row there and changes nothing.
func (s *Service) scheduleExpiry(ctx context.Context, cmd Command, res *Result, d time.Duration, expireAfter string, tc tracing.Context) {
	args, _ := json.Marshal(DeleteArgs{MessageID: res.MessageID, DeleteForEveryone: true})
	origin, _ := json.Marshal(cmd.Origin)
	row := &store.Schedule{ID: newScheduleID(), Instance: cmd.Instance, Kind: KindDelete, MessageID: res.MessageID, Args: string(args),
		Origin: string(origin), TraceParent: tc.String(), DueAt: res.Timestamp.Add(d), CreatedAt: s.now()}
	ev := Event{Type: EventStatusScheduled, Instance: cmd.Instance, TraceParent: tc.String(), Origin: cmd.Origin,
		Data: ScheduledData{ScheduleID: row.ID, Action: ActionRevoke, MessageID: res.MessageID, MessageType: res.MessageType, DueAt: row.DueAt,
			ExpireAfter: expireAfter, Source: res.Source, TraceID: tc.TraceID}}
	if err := s.insertSchedule(ctx, row, ev); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			s.log.Error("schedule the revoke of an expiring status", "instance", cmd.Instance, "messageId", res.MessageID, "err", err)
		}
		return
	}
	metrics.Schedule(KindDelete, "scheduled")
	s.wakeScheduler()
	exp := row.DueAt
	res.ScheduleID, res.ExpireAt = row.ID, &exp
}

// insertSchedule stores row with its status.scheduled event, so neither
// exists without the other. [store.ErrConflict] when the status already has
// a schedule of that kind.
func (s *Service) insertSchedule(ctx context.Context, row *store.Schedule, ev Event) error {
	err := s.record(ctx, Outcome{Event: ev, Schedule: row})()
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	return err
}

// cancel is the schedule.cancel command.
func (s *Service) cancel(ctx context.Context, cmd Command, a CancelArgs, tc tracing.Context) (*Result, error) {
	ss, ok := s.store.(scheduleStore)
	if !ok {
		return nil, errcode.Errorf(errcode.CodeInternal, "scheduling is not available")
	}
	row, cancelled, err := ss.ScheduleCancel(ctx, cmd.Instance, a.ScheduleID, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.ErrScheduleNotFound
	}
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	if !cancelled {
		return nil, errcode.Errorf(errcode.CodeScheduleNotPending, "Schedule is already %s", row.State)
	}
	metrics.Schedule(row.Kind, "cancelled")
	if s.scheduler != nil {
		s.scheduler.dropPrepared(row.MessageID)
	}
	// status.cancelled joins the schedule's trace, where status.scheduled is.
	stc := tc
	if p, ok := tracing.Parse(row.TraceParent); ok {
		stc = p.Child()
	}
	var origin Origin
	_ = json.Unmarshal([]byte(row.Origin), &origin)
	s.emit(ctx, Event{Type: EventStatusCancelled, Instance: cmd.Instance, TraceParent: stc.String(), Origin: origin,
		Data: CancelledData{ScheduleID: row.ID, Action: actionOf(row.Kind), MessageID: row.MessageID, DueAt: row.DueAt, TraceID: stc.TraceID}})
	return &Result{MessageID: row.MessageID, Chat: Chat{JID: StatusBroadcastJID}, Timestamp: s.now(), TraceID: stc.TraceID, ScheduleID: row.ID}, nil
}

func actionOf(kind string) string {
	if kind == KindDelete {
		return ActionRevoke
	}
	return ActionPublish
}

// originOf decodes a stored status's origin.
func originOf(st *store.Status) Origin {
	var o Origin
	_ = json.Unmarshal([]byte(st.Origin), &o)
	return o
}

// newScheduleID is a UUIDv7: schedules list in creation order within a due time.
func newScheduleID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func (s *Service) wakeScheduler() {
	if s.scheduler != nil {
		s.scheduler.Wake()
	}
}

// ScheduleView is a schedule as the API, the console and the schedule.list
// node show it (schemas/schedule.list.output.json).
type ScheduleView struct {
	ID          string       `json:"id"`
	Action      string       `json:"action"`
	MessageID   string       `json:"messageId"`
	MessageType string       `json:"messageType,omitempty"`
	State       string       `json:"state"`
	DueAt       time.Time    `json:"dueAt"`
	ExpireAfter string       `json:"expireAfter,omitempty"`
	Source      string       `json:"source,omitempty"`
	TraceID     string       `json:"traceId"`
	Attempts    int          `json:"attempts"`
	Error       *ScheduleErr `json:"error,omitempty"`
	CreatedAt   time.Time    `json:"createdAt"`
	FinishedAt  *time.Time   `json:"finishedAt,omitempty"`
	row         *store.Schedule
}

// ScheduleErr is why a schedule failed or was cancelled.
type ScheduleErr struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Row is the stored schedule (for cursors).
func (v ScheduleView) Row() *store.Schedule { return v.row }

// ViewOfSchedule describes a stored schedule.
func ViewOfSchedule(r *store.Schedule) ScheduleView {
	out := ScheduleView{ID: r.ID, MessageID: r.MessageID, State: r.State, DueAt: r.DueAt, Attempts: r.Attempt, CreatedAt: r.CreatedAt,
		Action: actionOf(r.Kind), row: r}
	if r.Kind == KindPublish {
		var a PublishArgs
		if json.Unmarshal([]byte(r.Args), &a) == nil {
			out.MessageType, out.ExpireAfter, out.Source = a.Type, a.ExpireAfter, a.Source
		}
	}
	if tc, ok := tracing.Parse(r.TraceParent); ok {
		out.TraceID = tc.TraceID
	}
	if r.ErrStatus != "" {
		out.Error = &ScheduleErr{Status: r.ErrStatus, Message: r.ErrMessage}
	}
	if !r.FinishedAt.IsZero() {
		f := r.FinishedAt
		out.FinishedAt = &f
	}
	return out
}

// scheduleLister lists schedules.
type scheduleLister interface {
	ScheduleList(ctx context.Context, p *store.ScheduleListParams) ([]*store.Schedule, error)
}

// Schedules lists an instance's schedules in due order ([store.ScheduleListParams]
// says which). [errcode.ErrInstanceNotFound] for an unknown instance.
func (s *Service) Schedules(ctx context.Context, p *store.ScheduleListParams) ([]ScheduleView, error) {
	sl, ok := s.store.(scheduleLister)
	if !ok {
		return nil, errcode.Errorf(errcode.CodeInternal, "scheduling is not available")
	}
	if _, err := s.sessions.Session(ctx, p.Instance); errors.Is(err, store.ErrNotFound) {
		return nil, errcode.ErrInstanceNotFound
	} else if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	list, err := sl.ScheduleList(ctx, p)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	out := make([]ScheduleView, 0, len(list))
	for _, r := range list {
		out = append(out, ViewOfSchedule(r))
	}
	return out, nil
}
