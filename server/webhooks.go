package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/schemas"
	"github.com/statusflow/statusflow/webhooks"
)

// RegisterWebhooks adds the webhook routes (API.md §9): outbound webhook
// configuration, deliveries and replay, inbound hooks and their public
// URL POST /hooks/in/:hookId, whose signature is its authentication.
func RegisterWebhooks(s *Server, svc *webhooks.Service) {
	h := &webhookHandlers{s: s, svc: svc}
	const tag = "webhooks"
	s.Handle(Route{Method: "POST", Path: "/api/events/webhook/:instance", Auth: AuthInstance, Tag: tag, Summary: "Create or replace a webhook, by label; the signing secret is returned when it is created", Request: schemas.WebhookConfigInput,
		Responses: Responses{200: schemas.WebhookReply, 201: schemas.WebhookReply}, BodyLimit: 16 << 10}, h.upsert)
	s.Handle(Route{Method: "GET", Path: "/api/events/getWebhook/:instance", Auth: AuthInstance, Tag: tag, Summary: "List the instance's webhooks", Responses: Responses{200: schemas.WebhookListReply}}, h.list)
	s.Handle(Route{Method: "DELETE", Path: "/api/events/webhook/:instance/:label", Auth: AuthInstance, Tag: tag, Summary: "Delete a webhook; its deliveries not yet sent are discarded", Responses: Responses{200: schemas.WebhookDeleteReply}}, h.delete)
	s.Handle(Route{Method: "POST", Path: "/api/events/webhook/:instance/:label/rotate", Auth: AuthInstance, Tag: tag, Summary: "Rotate a webhook's signing secret; the old one still signs during the grace period", Responses: Responses{200: schemas.WebhookReply}}, h.rotate)
	s.Handle(Route{Method: "GET", Path: "/api/events/deliveries/:instance", Auth: AuthInstance, Tag: tag, Summary: "List webhook deliveries with their attempts (?state=&webhook=&event=&limit=)", Responses: Responses{200: schemas.DeliveryListReply}}, h.deliveries)
	s.Handle(Route{Method: "POST", Path: "/api/events/deliveries/:instance/:id/replay", Auth: AuthInstance, Tag: tag, Summary: "Send a delivery again, with the same webhook-id", Responses: Responses{200: schemas.DeliveryReply, 409: ErrorBody}}, h.replay)
	s.Handle(Route{Method: "POST", Path: "/api/events/inbound/:instance", Auth: AuthInstance, Tag: tag, Summary: "Create an inbound hook: a URL and a secret to publish with signed POSTs", Request: schemas.WebhookInboundCreateInput,
		Responses: Responses{201: schemas.InboundReply}, BodyLimit: smallBody}, h.createInbound)
	s.Handle(Route{Method: "GET", Path: "/api/events/inbound/:instance", Auth: AuthInstance, Tag: tag, Summary: "List the instance's inbound hooks", Responses: Responses{200: schemas.InboundListReply}}, h.listInbound)
	s.Handle(Route{Method: "DELETE", Path: "/api/events/inbound/:instance/:id", Auth: AuthInstance, Tag: tag, Summary: "Delete an inbound hook", Responses: Responses{200: schemas.InboundDeleteReply}}, h.deleteInbound)
	s.Handle(Route{Method: "POST", Path: "/api/events/inbound/:instance/:id/rotate", Auth: AuthInstance, Tag: tag, Summary: "Rotate an inbound hook's secret; the old one is accepted during the grace period", Responses: Responses{200: schemas.InboundReply}}, h.rotateInbound)
	s.Handle(Route{Method: "POST", Path: "/hooks/in/:hookId", Auth: AuthNone, Tag: tag, Summary: "Run an inbound hook's node: a body signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)", Request: schemas.WebhookInboundInput,
		Responses: Responses{200: schemas.WebhookInboundReply, 401: ErrorBody, 409: ErrorBody, 503: ErrorBody}}, h.receive)
}

type webhookHandlers struct {
	s   *Server
	svc *webhooks.Service
}

func (h *webhookHandlers) upsert(c *fiber.Ctx) error {
	var in webhooks.WebhookInput
	if err := h.s.deps.Validator.Decode(schemas.WebhookConfigInput, c.Body(), &in); err != nil {
		return err
	}
	w, created, err := h.svc.Upsert(c.UserContext(), c.Params("instance"), in)
	if err != nil {
		return err
	}
	if created {
		return reply(c, fiber.StatusCreated, "Webhook created; keep the secret, it is shown only now", fiber.Map{"webhook": w})
	}
	return OK(c, "Webhook updated", fiber.Map{"webhook": w})
}

func (h *webhookHandlers) list(c *fiber.Ctx) error {
	ws, err := h.svc.List(c.UserContext(), c.Params("instance"))
	if err != nil {
		return err
	}
	return OK(c, fmt.Sprintf("%d webhooks found", len(ws)), fiber.Map{"webhooks": ws})
}

func (h *webhookHandlers) delete(c *fiber.Ctx) error {
	if err := h.svc.Delete(c.UserContext(), c.Params("instance"), c.Params("label")); err != nil {
		return err
	}
	return OK(c, "Webhook deleted", fiber.Map{"webhook": fiber.Map{"label": c.Params("label")}})
}

func (h *webhookHandlers) rotate(c *fiber.Ctx) error {
	w, err := h.svc.Rotate(c.UserContext(), c.Params("instance"), c.Params("label"))
	if err != nil {
		return err
	}
	return OK(c, "Webhook secret rotated; the previous one still signs until previousSecretValidUntil", fiber.Map{"webhook": w})
}

func (h *webhookHandlers) deliveries(c *fiber.Ctx) error {
	limit, err := queryLimit(c, 0, 1000)
	if err != nil {
		return err
	}
	ds, err := h.svc.Deliveries(c.UserContext(), c.Params("instance"), webhooks.DeliveryFilter{
		State: webhooks.DeliveryState(c.Query("state")), Webhook: c.Query("webhook"), Event: c.Query("event"), Limit: limit,
	})
	if err != nil {
		return err
	}
	return OK(c, fmt.Sprintf("%d deliveries found", len(ds)), fiber.Map{"deliveries": ds})
}

func (h *webhookHandlers) replay(c *fiber.Ctx) error {
	d, err := h.svc.Replay(c.UserContext(), c.Params("instance"), c.Params("id"))
	if err != nil {
		return err
	}
	return OK(c, "Delivery queued for replay", fiber.Map{"delivery": d})
}

// absolute makes an inbound hook's path a URL on the address the caller used.
func absolute(c *fiber.Ctx, v *webhooks.InboundHook) *webhooks.InboundHook {
	if strings.HasPrefix(v.URL, "/") {
		v.URL = c.BaseURL() + v.URL
	}
	return v
}

func (h *webhookHandlers) createInbound(c *fiber.Ctx) error {
	var in webhooks.InboundInput
	body := c.Body()
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := h.s.deps.Validator.Decode(schemas.WebhookInboundCreateInput, body, &in); err != nil {
		return err
	}
	v, err := h.svc.CreateInbound(c.UserContext(), c.Params("instance"), in)
	if err != nil {
		return err
	}
	return reply(c, fiber.StatusCreated, "Inbound hook created; keep the secret, it is shown only now", fiber.Map{"hook": absolute(c, v)})
}

func (h *webhookHandlers) listInbound(c *fiber.Ctx) error {
	hs, err := h.svc.ListInbound(c.UserContext(), c.Params("instance"))
	if err != nil {
		return err
	}
	for _, v := range hs {
		absolute(c, v)
	}
	return OK(c, fmt.Sprintf("%d inbound hooks found", len(hs)), fiber.Map{"hooks": hs})
}

func (h *webhookHandlers) deleteInbound(c *fiber.Ctx) error {
	if err := h.svc.DeleteInbound(c.UserContext(), c.Params("instance"), c.Params("id")); err != nil {
		return err
	}
	return OK(c, "Inbound hook deleted", fiber.Map{"hook": fiber.Map{"id": c.Params("id")}})
}

func (h *webhookHandlers) rotateInbound(c *fiber.Ctx) error {
	v, err := h.svc.RotateInbound(c.UserContext(), c.Params("instance"), c.Params("id"))
	if err != nil {
		return err
	}
	return OK(c, "Inbound hook secret rotated; the previous one is accepted until previousSecretValidUntil", fiber.Map{"hook": absolute(c, v)})
}

// receive is POST /hooks/in/:hookId. The answer is execute's:
// {"success": true, "traceId", "output", …}.
func (h *webhookHandlers) receive(c *fiber.Ctx) error {
	hdr := http.Header{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if v := c.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	res, err := h.svc.Receive(c.UserContext(), c.Params("hookId"), c.Body(), hdr, traceOf(c).String())
	if err != nil {
		return err
	}
	return OK(c, "Webhook accepted", fiber.Map{"traceId": res.TraceID, "output": res.Output, "hookId": res.HookID, "webhookId": res.WebhookID,
		"node": res.Node, "instance": res.Instance})
}
