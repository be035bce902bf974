package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/webhooks"
)

// Event log paging: limit defaults to 100 and is at most 1000.
const (
	eventLogLimitDefault = 100
	eventLogLimitMax     = 1000
)

// EventStore is what the event log routes read from the database.
// *store.Store is one.
type EventStore interface {
	EventList(ctx context.Context, p *store.EventListParams) ([]*store.Event, error)
}

// EventDeliveries gives the event log the webhook deliveries of events: the
// webhooks package owns the outbox. *webhooks.Service is one.
type EventDeliveries interface {
	// EventDeliveries returns the deliveries event by event in the order
	// given, each event's oldest first, with their attempts.
	EventDeliveries(ctx context.Context, instance string, eventIDs []string) ([]*webhooks.Delivery, error)
}

// eventLogParams documents the event log's query parameters (OpenAPI).
var eventLogParams = []map[string]any{
	{"name": "traceId", "in": "query", "required": false, "schema": map[string]any{"type": "string"},
		"description": "Only events of this trace; the answer then also carries `related` (later deletions of the same statuses) and `deliveries` (webhook deliveries with their attempts)."},
	{"name": "type", "in": "query", "required": false, "schema": map[string]any{"type": "string"}, "description": "Only events of this type (status.accepted, status.published, …)."},
	{"name": "source", "in": "query", "required": false, "schema": map[string]any{"type": "string"}, "description": "Only events with this origin tag."},
	{"name": "platform", "in": "query", "required": false, "schema": map[string]any{"type": "string"}, "description": "Only events whose origin platform is this (http, n8n, nats, …)."},
	{"name": "since", "in": "query", "required": false, "schema": map[string]any{"type": "string"}, "description": "Only events at or after this time: RFC 3339 or Unix seconds."},
	{"name": "limit", "in": "query", "required": false, "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000}, "description": "Events per page. Defaults to 100."},
	{"name": "cursor", "in": "query", "required": false, "schema": map[string]any{"type": "string"}, "description": "The `nextCursor` of the previous page."},
}

// eventsLog is GET /api/events/log/:instance: the instance's stored events,
// oldest first, as their CloudEvents JSON, filtered by traceId, type, source,
// platform and since (RFC 3339 or Unix seconds), limit events a page. A page
// that may have more ends with `nextCursor`; pass it back as `cursor`.
//
// With traceId the answer is a status's whole story: status.accepted, then
// status.published or status.failed; under `related` the status.deleted
// events of later requests (other traces) about the same messageIds; and
// under `deliveries` every webhook delivery all those events caused, with
// its attempts.
func (s *Server) eventsLog(c *fiber.Ctx) error {
	ctx := c.UserContext()
	name := c.Params("instance")
	if _, err := s.deps.Instances.InstanceGetByName(ctx, name); errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "Instance not found")
	} else if err != nil {
		return err
	}
	p := &store.EventListParams{Instance: name, TraceID: c.Query("traceId"), Type: c.Query("type"),
		Source: c.Query("source"), Platform: c.Query("platform"), Limit: eventLogLimitDefault}
	if v := c.Query("since"); v != "" {
		t, err := parseSince(v)
		if err != nil {
			return newError(fiber.StatusBadRequest, "Invalid since: use an RFC 3339 time or Unix seconds")
		}
		p.Since = t
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > eventLogLimitMax {
			return newError(fiber.StatusBadRequest, "Invalid limit: use a number from 1 to 1000")
		}
		p.Limit = n
	}
	if v := c.Query("cursor"); v != "" {
		seq, err := decodeCursor(v)
		if err != nil {
			return newError(fiber.StatusBadRequest, "Invalid cursor")
		}
		p.AfterSeq = seq
	}
	list, err := s.deps.Events.EventList(ctx, p)
	if err != nil {
		return err
	}
	evs := make([]json.RawMessage, 0, len(list))
	for _, e := range list {
		evs = append(evs, json.RawMessage(e.Body))
	}
	fields := fiber.Map{"events": evs}
	if len(list) == p.Limit {
		fields["nextCursor"] = encodeCursor(list[len(list)-1].Seq)
	}
	if p.TraceID != "" {
		related, err := s.relatedEvents(c, name, p.TraceID, list)
		if err != nil {
			return err
		}
		rel := make([]json.RawMessage, 0, len(related))
		for _, e := range related {
			rel = append(rel, json.RawMessage(e.Body))
		}
		fields["related"] = rel
		ds, err := s.eventDeliveries(c, name, append(list, related...))
		if err != nil {
			return err
		}
		fields["deliveries"] = ds
	}
	return OK(c, itoa(len(evs))+" events found", fields)
}

// relatedEvents finds the events of other traces about the statuses in list:
// a status is usually deleted by a later request with its own trace, and
// its story includes that status.deleted event.
func (s *Server) relatedEvents(c *fiber.Ctx, instance, traceID string, list []*store.Event) ([]*store.Event, error) {
	ids := map[string]bool{}
	var since time.Time
	for _, e := range list {
		var ce struct {
			Data struct {
				MessageID string `json:"messageId"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(e.Body), &ce) == nil && ce.Data.MessageID != "" {
			ids[ce.Data.MessageID] = true
			if since.IsZero() || e.Time.Before(since) {
				since = e.Time
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var out []*store.Event
	p := &store.EventListParams{Instance: instance, Type: status.EventStatusDeleted, Since: since, Limit: eventLogLimitMax}
	for {
		page, err := s.deps.Events.EventList(c.UserContext(), p)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			var ce struct {
				Data struct {
					MessageID string `json:"messageId"`
				} `json:"data"`
			}
			if e.TraceID != traceID && json.Unmarshal([]byte(e.Body), &ce) == nil && ids[ce.Data.MessageID] {
				out = append(out, e)
			}
		}
		if len(page) < p.Limit {
			return out, nil
		}
		p.AfterSeq = page[len(page)-1].Seq
	}
}

// deliveryView is a webhook delivery in an event log story.
type deliveryView struct {
	ID          string        `json:"id"`
	Webhook     string        `json:"webhook"`
	EventID     string        `json:"eventId"`
	EventType   string        `json:"eventType"`
	State       string        `json:"state"`
	Attempt     int           `json:"attempt"`
	LastStatus  int           `json:"lastStatus,omitempty"`
	LastError   string        `json:"lastError,omitempty"`
	CreatedAt   time.Time     `json:"createdAt"`
	FinalizedAt *time.Time    `json:"finalizedAt,omitempty"`
	Attempts    []attemptView `json:"attempts"`
}

type attemptView struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode"`
	LatencyMs  int64     `json:"latencyMs"`
	Error      string    `json:"error,omitempty"`
}

// eventDeliveries lists the webhook deliveries the events caused, from the
// webhooks package (it owns the outbox).
func (s *Server) eventDeliveries(c *fiber.Ctx, instance string, list []*store.Event) ([]deliveryView, error) {
	out := []deliveryView{}
	if s.deps.Deliveries == nil {
		return out, nil
	}
	ids := make([]string, 0, len(list))
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	ds, err := s.deps.Deliveries.EventDeliveries(c.UserContext(), instance, ids)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		v := deliveryView{ID: d.ID, Webhook: d.Webhook, EventID: d.EventID, EventType: d.EventType, State: string(d.State), Attempt: d.Attempt,
			LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: d.CreatedAt, FinalizedAt: d.FinalizedAt, Attempts: make([]attemptView, 0, len(d.Attempts))}
		for _, a := range d.Attempts {
			v.Attempts = append(v.Attempts, attemptView(a))
		}
		out = append(out, v)
	}
	return out, nil
}

// maxSince is the latest `since` accepted (9999-12-31T23:59:59Z): past it
// times no longer fit the databases' timestamp types.
const maxSince = 253402300799

func parseSince(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if n, nerr := strconv.ParseInt(v, 10, 64); nerr == nil {
		t, err = time.Unix(n, 0).UTC(), nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if t.Unix() < 0 || t.Unix() > maxSince {
		return time.Time{}, errors.New("since out of range")
	}
	return t, nil
}

// Cursors are opaque to clients: the last seq returned, base64url-encoded.
const cursorPrefix = "seq:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(v string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, errors.New("invalid cursor")
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(string(b), cursorPrefix), 10, 64)
	if err != nil || seq < 0 {
		return 0, errors.New("invalid cursor")
	}
	return seq, nil
}
