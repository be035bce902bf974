package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/schemas"
)

// StatusStore is what the status lookup, views and schedule routes read
// from the database. *store.Store is one.
type StatusStore interface {
	// StatusGet returns [store.ErrNotFound] when there is none.
	StatusGet(ctx context.Context, instance, messageID string) (*store.Status, error)
	ViewCount(ctx context.Context, instance, messageID string) (int64, error)
	ViewList(ctx context.Context, p *store.ViewListParams) ([]*store.View, error)
}

// registerStatusFind adds GET /api/status/find/:instance: one published
// status by its message id (the Zapier app's "Find a Status" search, and
// anyone holding a messageId from an event).
func (s *Server) registerStatusFind() {
	s.Handle(Route{Method: "GET", Path: "/api/status/find/:instance", Auth: AuthInstance, Tag: "status",
		Summary:   "One published status by its message id: type, source, trace, origin and whether it was revoked",
		Responses: Responses{200: DataOf(schemas.StatusFindOutput)}}, s.findStatus)
}

func init() {
	queryParams["/api/status/find/:instance"] = []map[string]any{
		{"name": "messageId", "in": "query", "required": true, "description": "The status's WhatsApp message id.", "schema": map[string]any{"type": "string"}},
	}
}

// statusFindReply is schemas/status.find.output.json.
type statusFindReply struct {
	MessageID   string          `json:"messageId"`
	MessageType string          `json:"messageType"`
	Source      string          `json:"source,omitempty"`
	TraceID     string          `json:"traceId"`
	Origin      json.RawMessage `json:"origin"`
	CreatedAt   time.Time       `json:"createdAt"`
	Revoked     bool            `json:"revoked"`
	RevokedAt   *time.Time      `json:"revokedAt,omitempty"`
}

// findStatus is GET /api/status/find/:instance?messageId=….
func (s *Server) findStatus(c *fiber.Ctx) error {
	name := c.Params("instance")
	ctx := c.UserContext()
	if _, err := s.deps.Instances.InstanceGetByName(ctx, name); errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "Instance not found")
	} else if err != nil {
		return err
	}
	id := c.Query("messageId")
	if id == "" {
		return newError(fiber.StatusBadRequest, "MessageID is required")
	}
	st, err := s.deps.Statuses.StatusGet(ctx, name, id)
	if errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "message not found")
	}
	if err != nil {
		return err
	}
	origin := json.RawMessage(st.Origin)
	if len(origin) == 0 || !json.Valid(origin) {
		origin = json.RawMessage(`{}`)
	}
	return OK(c, "Status found", fiber.Map{"data": statusFindReply{
		MessageID: st.MessageID, MessageType: st.Type, Source: st.Source, TraceID: st.TraceID, Origin: origin,
		CreatedAt: st.CreatedAt.UTC(), Revoked: st.RevokedAt != nil, RevokedAt: st.RevokedAt,
	}})
}
