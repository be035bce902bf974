package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/schemas"
)

// registerSchedules adds the views and schedule routes (issue 18).
func (s *Server) registerSchedules() {
	s.Handle(Route{Method: "GET", Path: "/api/status/views/:instance", Auth: AuthInstance, Tag: "status",
		Summary: "Who viewed a status: the viewer count and a page of viewers, first viewer first", Responses: Responses{200: DataOf(schemas.ViewsOutput)}}, s.statusViews)
	s.Handle(Route{Method: "GET", Path: "/api/schedule/:instance", Auth: AuthInstance, Tag: "schedule",
		Summary: "Scheduled publications and revokes, in due order", Responses: Responses{200: DataOf(schemas.ScheduleListOutput)}}, s.listSchedules)
	s.Handle(Route{Method: "DELETE", Path: "/api/schedule/:instance/:id", Auth: AuthInstance, Tag: "schedule",
		Summary: "Cancel a pending schedule", Responses: Responses{200: DataOf(schemas.ScheduleCancelOutput), 409: ErrorBody}}, s.cancelSchedule)
	s.Handle(Route{Method: "POST", Path: "/api/sandbox/:instance/views", Session: true, Auth: AuthInstance, Tag: "sandbox",
		Summary: "Simulate viewers of a sandbox status: their receipts take the path real WhatsApp receipts take", Request: schemas.SandboxViewsInput,
		Responses: Responses{200: DataOf(schemas.SandboxViewsOutput)}}, s.sandboxViews)
}

func init() {
	queryParams["/api/status/views/:instance"] = []map[string]any{
		{"name": "messageId", "in": "query", "required": true, "description": "The status.", "schema": map[string]any{"type": "string"}},
		{"name": "limit", "in": "query", "required": false, "description": "Viewers per page (1–1000). Defaults to 100.", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000}},
		{"name": "cursor", "in": "query", "required": false, "description": "nextCursor of the previous page.", "schema": map[string]any{"type": "string"}},
	}
	queryParams["/api/schedule/:instance"] = []map[string]any{
		{"name": "state", "in": "query", "required": false, "description": "Comma-separated states (pending, running, done, failed, cancelled). Defaults to pending,running.",
			"schema": map[string]any{"type": "string"}},
		{"name": "limit", "in": "query", "required": false, "description": "Schedules per page (1–1000). Defaults to 100.", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000}},
		{"name": "cursor", "in": "query", "required": false, "description": "nextCursor of the previous page.", "schema": map[string]any{"type": "string"}},
	}
}

// viewReply is one viewer in GET /api/status/views.
type viewReply struct {
	Viewer   string    `json:"viewer"`
	Kind     string    `json:"kind"`
	ViewedAt time.Time `json:"viewedAt"`
}

// statusViews is GET /api/status/views/:instance?messageId=….
func (s *Server) statusViews(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	id := c.Query("messageId")
	if id == "" {
		return newError(fiber.StatusBadRequest, "MessageID is required")
	}
	ctx := c.UserContext()
	if _, err := s.deps.Statuses.StatusGet(ctx, in.Name, id); errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "message not found")
	} else if err != nil {
		return err
	}
	p := &store.ViewListParams{Instance: in.Name, MessageID: id, Limit: c.QueryInt("limit", 100)}
	if cur := c.Query("cursor"); cur != "" {
		var after struct {
			V string `json:"v"`
			T int64  `json:"t"`
		}
		if b, err := base64.RawURLEncoding.DecodeString(cur); err != nil || json.Unmarshal(b, &after) != nil {
			return newError(fiber.StatusBadRequest, "Invalid cursor")
		}
		p.After = &store.View{Viewer: after.V, ViewedAt: time.UnixMilli(after.T).UTC()}
	}
	n, err := s.deps.Statuses.ViewCount(ctx, in.Name, id)
	if err != nil {
		return err
	}
	list, err := s.deps.Statuses.ViewList(ctx, p)
	if err != nil {
		return err
	}
	viewers := make([]viewReply, 0, len(list))
	for _, v := range list {
		viewers = append(viewers, viewReply{Viewer: v.Viewer, Kind: v.Kind, ViewedAt: v.ViewedAt})
	}
	data := fiber.Map{"messageId": id, "count": n, "viewers": viewers}
	if len(list) > 0 && len(list) == pageOf(p.Limit) {
		last := list[len(list)-1]
		b, _ := json.Marshal(map[string]any{"v": last.Viewer, "t": last.ViewedAt.UnixMilli()})
		data["nextCursor"] = base64.RawURLEncoding.EncodeToString(b)
	}
	return OK(c, itoa(int(n))+" views found", fiber.Map{"data": data})
}

// pageOf mirrors the store's page-size rule: 100 unless 1–1000 is asked for.
func pageOf(n int) int {
	if n < 1 || n > 1000 {
		return 100
	}
	return n
}

var scheduleStates = map[string]bool{store.SchedulePending: true, store.ScheduleRunning: true, store.ScheduleDone: true,
	store.ScheduleFailed: true, store.ScheduleCancelled: true}

// listSchedules is GET /api/schedule/:instance.
func (s *Server) listSchedules(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	p := &store.ScheduleListParams{Instance: in.Name, Limit: c.QueryInt("limit", 100)}
	if v := c.Query("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if !scheduleStates[st] {
				return newError(fiber.StatusBadRequest, "Invalid state: use pending, running, done, failed or cancelled")
			}
			p.States = append(p.States, st)
		}
	}
	if cur := c.Query("cursor"); cur != "" {
		var after struct {
			ID string `json:"i"`
			T  int64  `json:"t"`
		}
		if b, err := base64.RawURLEncoding.DecodeString(cur); err != nil || json.Unmarshal(b, &after) != nil {
			return newError(fiber.StatusBadRequest, "Invalid cursor")
		}
		p.After = &store.Schedule{ID: after.ID, DueAt: time.UnixMilli(after.T).UTC()}
	}
	list, err := s.deps.Service.Schedules(c.UserContext(), p)
	if err != nil {
		return err
	}
	data := fiber.Map{"schedules": list}
	if len(list) > 0 && len(list) == pageOf(p.Limit) {
		last := list[len(list)-1].Row()
		b, _ := json.Marshal(map[string]any{"i": last.ID, "t": last.DueAt.UnixMilli()})
		data["nextCursor"] = base64.RawURLEncoding.EncodeToString(b)
	}
	return OK(c, itoa(len(list))+" schedules found", fiber.Map{"data": data})
}

// cancelSchedule is DELETE /api/schedule/:instance/:id: a schedule.cancel command.
func (s *Server) cancelSchedule(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Service.Execute(c.UserContext(), status.Command{
		Instance: in.Name, Args: status.CancelArgs{ScheduleID: c.Params("id")}, Origin: status.Origin{Platform: "http"},
		TraceParent: traceOf(c).String(),
	})
	if err != nil {
		return err
	}
	return OK(c, "Schedule cancelled", fiber.Map{"data": fiber.Map{"scheduleId": res.ScheduleID, "messageId": res.MessageID, "traceId": res.TraceID}})
}

// sandboxViewsBody is the body of POST /api/sandbox/:instance/views.
type sandboxViewsBody struct {
	MessageID string   `json:"messageId"`
	Viewers   []string `json:"viewers"`
	Count     int      `json:"count"`
	Kind      string   `json:"kind"`
}

// sandboxViews is POST /api/sandbox/:instance/views: simulated receipts.
func (s *Server) sandboxViews(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	if in.Engine != whatsapp.EngineSandbox {
		return newError(fiber.StatusBadRequest, "Instance is not a sandbox instance")
	}
	var body sandboxViewsBody
	if err := s.deps.Validator.Decode(schemas.SandboxViewsInput, c.Body(), &body); err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := s.deps.Statuses.StatusGet(ctx, in.Name, body.MessageID); errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "message not found")
	} else if err != nil {
		return err
	}
	viewers := body.Viewers
	for i := 0; i < body.Count; i++ {
		// Made-up numbers in a range no country code uses (+999).
		viewers = append(viewers, "999"+strings.Repeat("0", 7)+itoa(1000 + i)[1:]+"@s.whatsapp.net")
	}
	if err := s.deps.Manager.SimulateViews(ctx, in.Name, body.MessageID, body.Kind, viewers); err != nil {
		return err
	}
	n, err := s.deps.Statuses.ViewCount(ctx, in.Name, body.MessageID)
	if err != nil {
		return err
	}
	return OK(c, "Views simulated", fiber.Map{"data": fiber.Map{"messageId": body.MessageID, "count": n}})
}
