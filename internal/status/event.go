package status

import (
	"context"
	"time"

	"github.com/statusflow/statusflow/internal/store"
)

// Event types the core emits. They name NATS subjects
// (statusflow.events.<instance>.<type>), webhook filters and CloudEvents
// `type` values, so they never change once shipped.
const (
	// EventStatusAccepted: a publish command started for a known instance
	// (before any media work); it precedes status.published or status.failed
	// with the same trace id.
	EventStatusAccepted = "status.accepted"
	// EventStatusPublished: a status reached WhatsApp (or the sandbox).
	EventStatusPublished = "status.published"
	// EventStatusFailed: a publish command failed; data carries the error status.
	EventStatusFailed = "status.failed"
	// EventStatusDeleted: a status was revoked or deleted for me.
	EventStatusDeleted = "status.deleted"
	// EventInstanceState: an instance's connection state changed.
	EventInstanceState = "instance.state"
	// EventStatusViewed: a viewer saw (or played) a status, once per viewer;
	// it is on the status's trace.
	EventStatusViewed = "status.viewed"
	// EventStatusScheduled: a publication (publishAt) or a revoke
	// (expireAfter) was scheduled; the command's events follow on the same
	// trace when it runs.
	EventStatusScheduled = "status.scheduled"
	// EventStatusCancelled: a pending schedule was cancelled.
	EventStatusCancelled = "status.cancelled"
	// EventInstanceOwner: a replica took, released or lost an instance's
	// lease (clustering on); the new owner reports its own "taken".
	EventInstanceOwner = "instance.owner"
)

// EventTypes lists every event type, for schemas, filters and docs.
func EventTypes() []string {
	return []string{EventStatusAccepted, EventStatusPublished, EventStatusFailed, EventStatusDeleted, EventInstanceState,
		EventStatusViewed, EventStatusScheduled, EventStatusCancelled, EventInstanceOwner}
}

// Event is something that happened, fanned out to the store, NATS and
// webhooks. Data is a JSON-marshalable value described by
// schemas/event.<type>.json.
type Event struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Instance    string    `json:"instance"`
	Time        time.Time `json:"time"`
	TraceParent string    `json:"traceparent,omitempty"`
	Origin      Origin    `json:"origin"`
	Data        any       `json:"data"`
}

// Outcome is what a command leaves behind, recorded as one: its event and,
// when it made them, the published status's row and the schedule it stored.
// The row and the schedule exist if and only if the event does.
type Outcome struct {
	Event Event
	// Status is the row of a published status (with status.published).
	Status *store.Status
	// Schedule is a pending schedule (with status.scheduled).
	Schedule *store.Schedule
}

// Recorder is the core's port for what happened: it records an [Outcome]
// (internal/events: in the event log, over the store's group commit, with
// what must commit with it, such as webhook deliveries and a send deferred
// on ctx by store.WithDeferred), then fans its event out.
type Recorder interface {
	// Record queues o and returns at once; wait returns once o is
	// committed and fanned out, with the error when it was not recorded
	// (the cause itself when the row, the schedule or a deferred write
	// failed, e.g. store.ErrConflict for a schedule already there). The
	// outcomes of one trace commit in the order they were queued. wait may
	// be called more than once.
	Record(ctx context.Context, o Outcome) (wait func() error)
}

// AcceptedData is the data of a status.accepted event.
type AcceptedData struct {
	MessageID   string `json:"messageId"`
	MessageType string `json:"messageType"`
	Source      string `json:"source,omitempty"`
	TraceID     string `json:"traceId"`
}

// PublishedData is the data of a status.published event.
type PublishedData struct {
	MessageID   string    `json:"messageId"`
	MessageType string    `json:"messageType"`
	Chat        Chat      `json:"chat"`
	Timestamp   time.Time `json:"timestamp"`
	Source      string    `json:"source,omitempty"`
	TraceID     string    `json:"traceId"`
	// Confirmed is false when WhatsApp did not acknowledge the send in time
	// (the status was sent and stored; see [Result.Confirmed]).
	Confirmed bool      `json:"confirmed"`
	Audience  *Audience `json:"audience,omitempty"`
}

// FailedData is the data of a status.failed event.
type FailedData struct {
	MessageID   string `json:"messageId,omitempty"`
	MessageType string `json:"messageType,omitempty"`
	Source      string `json:"source,omitempty"`
	TraceID     string `json:"traceId"`
	Status      string `json:"status"`
	Message     string `json:"message"`
}

// DeletedData is the data of a status.deleted event.
type DeletedData struct {
	MessageID  string    `json:"messageId"`
	DeleteType string    `json:"deleteType"`
	Timestamp  time.Time `json:"timestamp"`
	TraceID    string    `json:"traceId"`
}

// InstanceStateData is the data of an instance.state event.
type InstanceStateData struct {
	State  string `json:"state"`
	JID    string `json:"numberJid,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// InstanceOwnerData is the data of an instance.owner event.
type InstanceOwnerData struct {
	// Replica is the replica reporting the change.
	Replica string `json:"replica"`
	// Change is "taken", "released" or "lost".
	Change string `json:"change"`
	// Owner is the owner after the change: Replica when taken, "" otherwise.
	Owner string `json:"owner"`
}

// ViewedData is the data of a status.viewed event.
type ViewedData struct {
	MessageID string    `json:"messageId"`
	Viewer    string    `json:"viewer"`
	Kind      string    `json:"kind"`
	Timestamp time.Time `json:"timestamp"`
	// Views is the status's viewer count including this one.
	Views   int64  `json:"views"`
	TraceID string `json:"traceId"`
}

// Schedule actions, as status.scheduled and status.cancelled report them.
const (
	ActionPublish = "publish"
	ActionRevoke  = "revoke"
)

// ScheduledData is the data of a status.scheduled event.
type ScheduledData struct {
	ScheduleID  string    `json:"scheduleId"`
	Action      string    `json:"action"`
	MessageID   string    `json:"messageId"`
	MessageType string    `json:"messageType,omitempty"`
	DueAt       time.Time `json:"dueAt"`
	ExpireAfter string    `json:"expireAfter,omitempty"`
	Source      string    `json:"source,omitempty"`
	TraceID     string    `json:"traceId"`
}

// CancelledData is the data of a status.cancelled event.
type CancelledData struct {
	ScheduleID string    `json:"scheduleId"`
	Action     string    `json:"action"`
	MessageID  string    `json:"messageId"`
	DueAt      time.Time `json:"dueAt"`
	TraceID    string    `json:"traceId"`
}
