package server

import (
	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
)

// registerNodes adds the node catalog's routes (API.md §7) when a catalog is configured.
func (s *Server) registerNodes() {
	if s.deps.Catalog == nil {
		return
	}
	s.Handle(Route{Method: "GET", Path: "/api/nodes", Auth: AuthNone, Tag: "nodes", Summary: "Every node descriptor, with its schemas inlined",
		Responses: Responses{200: schemas.NodeListReply}}, s.listNodes)
	s.Handle(Route{Method: "GET", Path: "/api/nodes/:id", Auth: AuthNone, Tag: "nodes", Summary: "One node descriptor; ?format=n8n or ?format=zapier renders it for that platform",
		Responses: Responses{200: schemas.NodeGetReply}}, s.getNode)
	s.Handle(Route{Method: "POST", Path: "/api/nodes/:id/execute", Auth: AuthAny, Tag: "nodes", Summary: "Execute an action node with an origin",
		Request:   schemas.ExecuteInput,
		Responses: Responses{200: schemas.ExecuteOutput, 202: schemas.ExecuteAcceptedReply, 409: ErrorBody, 503: ErrorBody}}, s.executeNode)
}

// listNodes is GET /api/nodes.
func (s *Server) listNodes(c *fiber.Ctx) error {
	cat := s.deps.Catalog
	list := cat.List()
	views := make([]nodes.View, 0, len(list))
	for _, d := range list {
		views = append(views, cat.View(d))
	}
	return OK(c, itoa(len(views))+" nodes found", fiber.Map{"nodes": views})
}

// getNode is GET /api/nodes/:id[?format=n8n|zapier].
func (s *Server) getNode(c *fiber.Ctx) error {
	cat := s.deps.Catalog
	d, ok := cat.Get(c.Params("id"))
	if !ok {
		return &errcode.Error{Code: errcode.CodeNodeNotFound, Message: "Node not found"}
	}
	switch f := c.Query("format"); f {
	case "":
		return OK(c, "Node found", fiber.Map{"node": cat.View(d)})
	case "n8n":
		r, err := nodes.RenderN8n(cat, d)
		if err != nil {
			return err
		}
		cred, err := nodes.RenderN8nCredential(cat)
		if err != nil {
			return err
		}
		return OK(c, "Node rendered for n8n", fiber.Map{"format": f, "node": r, "credential": cred})
	case "zapier":
		r, err := nodes.RenderZapier(cat, d)
		if err != nil {
			return err
		}
		return OK(c, "Node rendered for Zapier", fiber.Map{"format": f, "app": r})
	default:
		return newError(fiber.StatusBadRequest, "Invalid format: use n8n or zapier")
	}
}

// executeNode is POST /api/nodes/:id/execute. Checks: the node exists, the
// body matches execute.input.json, the token may use the instance, the input
// matches the node's schema and its source agrees with origin.source; then
// the node runs (or is queued with Prefer: respond-async).
func (s *Server) executeNode(c *fiber.Ctx) error {
	cat := s.deps.Catalog
	id := c.Params("id")
	if _, ok := cat.Get(id); !ok {
		return &errcode.Error{Code: errcode.CodeNodeNotFound, Message: "Node not found"}
	}
	req, err := nodes.DecodeExecuteRequest(s.deps.Validator, c.Body())
	if err != nil {
		return err
	}
	if err := PrincipalOf(c).CanUse(req.Instance); err != nil {
		return err
	}
	tc := traceOf(c)
	req.TraceParent = tc.String()
	req.IdempotencyKey = c.Get("Idempotency-Key")
	if req.Origin.Platform == "" {
		req.Origin.Platform = "http"
	}
	if s.deps.Enqueuer != nil && preferAsync(c) {
		cmd, err := cat.Prepare(id, req)
		if err != nil {
			return err
		}
		req.Origin = cmd.Origin
		req.MessageID = status.MessageIDFor(req.Instance, req.IdempotencyKey)
		if err := s.deps.Enqueuer.Enqueue(c.UserContext(), id, req); err != nil {
			return err
		}
		c.Set("Preference-Applied", "respond-async")
		return reply(c, fiber.StatusAccepted, "Execution accepted", fiber.Map{"status": "pending", "traceId": tc.TraceID,
			"output": fiber.Map{"messageId": req.MessageID, "chat": status.Chat{JID: status.StatusBroadcastJID}, "source": cmd.Origin.Source,
				"traceId": tc.TraceID, "origin": cmd.Origin}})
	}
	res, err := cat.Execute(c.UserContext(), id, req)
	if err != nil {
		return err
	}
	return OK(c, "Node executed", fiber.Map{"traceId": res.TraceID, "output": res.Output})
}
