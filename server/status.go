package server

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
)

// sendStatus is POST /api/message/status/:instance. Checks run in the order
// of API.md §4: instance name, body (schema, with the literal messages),
// instance exists, connected, media, send.
func (s *Server) sendStatus(c *fiber.Ctx) error {
	name := c.Params("instance")
	if name == "" {
		return newError(fiber.StatusBadRequest, "Instance name is required")
	}
	var args status.PublishArgs
	if err := s.deps.Validator.Decode(schemas.PublishInput, c.Body(), &args); err != nil {
		return err
	}
	origin := status.Origin{Platform: "http", Source: args.Source}
	if s.deps.Enqueuer != nil && preferAsync(c) {
		return s.enqueue(c, "status.publish", name, c.Body(), origin)
	}
	res, err := s.deps.Service.Execute(c.UserContext(), status.Command{
		Instance:       name,
		Args:           args,
		Origin:         origin,
		TraceParent:    traceOf(c).String(),
		IdempotencyKey: c.Get("Idempotency-Key"),
	})
	if err != nil {
		return err
	}
	if res.Scheduled {
		return c.Status(fiber.StatusAccepted).JSON(sentReply{Success: true, Message: "Status scheduled", Status: "scheduled", Data: res})
	}
	if res.Confirmed != nil && !*res.Confirmed {
		// Sent, stored and revocable; WhatsApp's ack did not come in time.
		return c.JSON(sentReply{Success: true, Message: "Status sent; WhatsApp did not confirm it in time", Status: "unconfirmed", Data: res})
	}
	// A struct, not OK's map: the busiest answer skips sorting map keys.
	return c.JSON(sentReply{Success: true, Message: "Status sent successfully", Status: "sent", Data: res})
}

// sentReply is Send Status's answer (API.md §4).
type sentReply struct {
	Success bool           `json:"success"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
	Data    *status.Result `json:"data"`
}

// deleteStatus is DELETE /api/chat/delete/:instance.
func (s *Server) deleteStatus(c *fiber.Ctx) error {
	name := c.Params("instance")
	if name == "" {
		return newError(fiber.StatusBadRequest, "Instance name is required")
	}
	var args status.DeleteArgs
	if err := s.deps.Validator.Decode(schemas.DeleteInput, c.Body(), &args); err != nil {
		return err
	}
	res, err := s.deps.Service.Execute(c.UserContext(), status.Command{
		Instance:       name,
		Args:           args,
		Origin:         status.Origin{Platform: "http"},
		TraceParent:    traceOf(c).String(),
		IdempotencyKey: c.Get("Idempotency-Key"),
	})
	if err != nil {
		return err
	}
	msg := "Message deleted for everyone"
	if res.DeleteType != "revoke" {
		msg = "Message deleted for me"
	}
	return OK(c, msg, fiber.Map{"delete_type": res.DeleteType, "messageId": res.MessageID, "traceId": res.TraceID})
}

// preferAsync reports whether the caller sent `Prefer: respond-async` (RFC 7240).
func preferAsync(c *fiber.Ctx) bool {
	for _, p := range strings.Split(c.Get("Prefer"), ",") {
		if strings.EqualFold(strings.TrimSpace(strings.SplitN(p, ";", 2)[0]), "respond-async") {
			return true
		}
	}
	return false
}

// enqueue queues a node execution and answers 202 with the pre-assigned
// messageId; the outcome follows as a status.published or status.failed event.
func (s *Server) enqueue(c *fiber.Ctx, nodeID, instance string, input []byte, origin status.Origin) error {
	tc := traceOf(c)
	id := status.MessageIDFor(instance, c.Get("Idempotency-Key"))
	err := s.deps.Enqueuer.Enqueue(c.UserContext(), nodeID, nodes.ExecuteRequest{
		Instance: instance, Input: append([]byte(nil), input...), Origin: origin,
		TraceParent: tc.String(), IdempotencyKey: c.Get("Idempotency-Key"), MessageID: id,
	})
	if err != nil {
		return err
	}
	c.Set("Preference-Applied", "respond-async")
	return reply(c, fiber.StatusAccepted, "Status accepted", fiber.Map{"status": "pending",
		"data": fiber.Map{"messageId": id, "chat": status.Chat{JID: status.StatusBroadcastJID}, "source": origin.Source, "traceId": tc.TraceID}})
}
