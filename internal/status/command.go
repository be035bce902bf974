package status

import (
	"encoding/json"
	"time"
)

// Kinds of command. A kind is stored in idempotency records, events and
// subjects, so it never derives from a Go type name.
const (
	KindPublish = "status.publish"
	KindDelete  = "status.delete"
	// KindCancel cancels a pending schedule.
	KindCancel = "schedule.cancel"
)

// Status types accepted by [PublishArgs.Type].
const (
	TypeText  = "text"
	TypeImage = "image"
	TypeVideo = "video"
	TypeAudio = "audio"
)

// Args is the payload of a [Command]: [PublishArgs] or [DeleteArgs].
type Args interface {
	Kind() string
}

// PublishArgs is the body of Send Status (API.md §4), already validated
// against schemas/status.publish.input.json by the front door.
type PublishArgs struct {
	Type            string   `json:"type"`
	Message         string   `json:"message,omitempty"`
	MediaURL        string   `json:"mediaUrl,omitempty"`
	MimeType        string   `json:"mimeType,omitempty"`
	FileName        string   `json:"fileName,omitempty"`
	BackgroundColor string   `json:"backgroundColor,omitempty"`
	Font            string   `json:"font,omitempty"`
	IsVoice         *bool    `json:"isVoice,omitempty"`
	Duration        *float64 `json:"duration,omitempty"`
	Waveform        []int    `json:"waveform,omitempty"`
	Source          string   `json:"source,omitempty"`
	// PublishAt (RFC 3339, at most 30 days ahead) schedules the publication
	// instead of publishing now.
	PublishAt string `json:"publishAt,omitempty"`
	// ExpireAfter (a Go duration under 24 h: "90m", "12h") revokes the
	// status that long after it went out.
	ExpireAfter string `json:"expireAfter,omitempty"`
	// AllowEmptyAudience publishes even when the status would reach nobody
	// (otherwise refused with empty_audience).
	AllowEmptyAudience bool `json:"allowEmptyAudience,omitempty"`
}

// Kind implements [Args].
func (PublishArgs) Kind() string { return KindPublish }

// CancelArgs cancels a pending schedule (DELETE /api/schedule/:instance/:id).
type CancelArgs struct {
	ScheduleID string `json:"scheduleId"`
}

// Kind implements [Args].
func (CancelArgs) Kind() string { return KindCancel }

// Voice reports whether an audio status goes out as a voice note (PTT); true
// unless isVoice is explicitly false.
func (a PublishArgs) Voice() bool { return a.IsVoice == nil || *a.IsVoice }

// DeleteArgs is the body of Delete a status (API.md §5).
type DeleteArgs struct {
	MessageID         string `json:"messageId"`
	DeleteForEveryone bool   `json:"deleteForEveryone,omitempty"`
}

// Kind implements [Args].
func (DeleteArgs) Kind() string { return KindDelete }

// Origin says who asked for a command: the automation platform, its workflow
// and execution. It is stored with the status and carried by every event.
type Origin struct {
	Platform     string          `json:"platform,omitempty"`
	WorkflowID   string          `json:"workflowId,omitempty"`
	WorkflowName string          `json:"workflowName,omitempty"`
	ExecutionID  string          `json:"executionId,omitempty"`
	NodeName     string          `json:"nodeName,omitempty"`
	Source       string          `json:"source,omitempty"`
	Extra        json.RawMessage `json:"extra,omitempty"`
}

// IsZero reports whether no origin field is set.
func (o Origin) IsZero() bool {
	return o.Platform == "" && o.WorkflowID == "" && o.WorkflowName == "" && o.ExecutionID == "" &&
		o.NodeName == "" && o.Source == "" && len(o.Extra) == 0
}

// Command is what every front door hands to the [Service]: the HTTP API,
// node execute, NATS triggers and inbound webhooks all build one.
type Command struct {
	// Instance is the instance name the command acts on.
	Instance string
	// Args is the validated payload.
	Args Args
	// Origin is who asked. Empty fields are fine.
	Origin Origin
	// TraceParent is the W3C traceparent of the request; the core continues it.
	TraceParent string
	// IdempotencyKey, when set, makes the command run at most once per
	// instance within the idempotency window (24 h).
	IdempotencyKey string
	// MessageID pre-assigns the WhatsApp message id (async publishing). Empty:
	// the core generates one.
	MessageID string
}

// Result is the outcome of a command, the `data` of the HTTP answer.
type Result struct {
	MessageID   string    `json:"messageId"`
	MessageType string    `json:"messageType,omitempty"`
	Chat        Chat      `json:"chat"`
	Timestamp   time.Time `json:"timestamp"`
	Source      string    `json:"source,omitempty"`
	TraceID     string    `json:"traceId"`
	Origin      *Origin   `json:"origin,omitempty"`
	// Confirmed is set on a publication that went out: false for a status
	// WhatsApp did not acknowledge in time (it was sent and may well have
	// arrived; it is stored and can be revoked like any other). nil for
	// deletes, scheduled publications and results stored before it existed.
	Confirmed *bool `json:"confirmed,omitempty"`
	// Audience is who the status reaches (nil when the engine cannot tell).
	Audience *Audience `json:"audience,omitempty"`
	// DeleteType is "revoke" or "delete_for_me" for delete commands.
	DeleteType string `json:"deleteType,omitempty"`
	// ScheduleID is the schedule a command created: the publication of a
	// publishAt request (Scheduled is then true), or the revoke of an
	// expireAfter one; or the schedule a cancel command cancelled.
	ScheduleID string     `json:"scheduleId,omitempty"`
	Scheduled  bool       `json:"scheduled,omitempty"`
	PublishAt  *time.Time `json:"publishAt,omitempty"`
	ExpireAt   *time.Time `json:"expireAt,omitempty"`
	// Replayed is true when the result comes from an earlier command with the
	// same idempotency key; nothing was published again.
	Replayed bool `json:"-"`
}

// Chat is where a status is sent.
type Chat struct {
	JID string `json:"jid"`
}

// StatusBroadcastJID is the chat every status goes to.
const StatusBroadcastJID = "status@broadcast"
