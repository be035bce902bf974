package server

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/schemas"
)

// audienceBody is schemas/instance.audience.input.json.
type audienceBody struct {
	Mode       string   `json:"mode"`
	Recipients []string `json:"recipients"`
	Count      *int     `json:"count"`
}

// sandboxAudience turns a body into the stored simulated audience.
func (b *audienceBody) sandboxAudience() (*store.SandboxAudience, error) {
	if b.Count != nil && b.Recipients != nil {
		return nil, newError(fiber.StatusBadRequest, "Invalid request body: give recipients or count, not both")
	}
	a := &store.SandboxAudience{Mode: b.Mode, Recipients: []string{}}
	switch {
	case b.Count != nil:
		a.Recipients = whatsapp.SandboxRecipients(*b.Count)
	default:
		for _, r := range b.Recipients {
			r = strings.TrimPrefix(r, "+")
			if !strings.Contains(r, "@") {
				r += "@s.whatsapp.net"
			}
			a.Recipients = append(a.Recipients, r)
		}
	}
	return a, nil
}

// putSandboxAudience stores a sandbox instance's simulated audience.
func (s *Server) putSandboxAudience(ctx context.Context, instance string, b *audienceBody) error {
	a, err := b.sandboxAudience()
	if err != nil {
		return err
	}
	return s.deps.Sandbox.SandboxAudiencePut(ctx, instance, a)
}

// getAudience is GET /api/instance/audience/:instance: who a status
// published now would reach (mode, count, a page of recipients).
func (s *Server) getAudience(c *fiber.Ctx) error {
	_, sess, err := s.session(c)
	if err != nil {
		return err
	}
	ar, ok := sess.(whatsapp.AudienceReader)
	if !ok {
		return newError(fiber.StatusBadRequest, "This instance's engine cannot tell its audience")
	}
	a, err := ar.Audience(c.UserContext())
	if errors.Is(err, whatsapp.ErrNotConnected) {
		return &apiError{HTTP: fiber.StatusServiceUnavailable, Message: "Instance is not connected to WhatsApp", Status: "disconnected"}
	}
	if err != nil {
		return err
	}
	limit := min(max(c.QueryInt("limit", 100), 1), 1000)
	offset := max(c.QueryInt("offset", 0), 0)
	page := []string{}
	if offset < len(a.Recipients) {
		page = a.Recipients[offset:min(offset+limit, len(a.Recipients))]
	}
	return OK(c, "Audience of "+c.Params("instance"), fiber.Map{"audience": fiber.Map{
		"mode": a.Mode, "recipients": len(a.Recipients), "list": page, "offset": offset, "limit": limit}})
}

// setAudience is PUT /api/instance/audience/:instance: a sandbox
// instance's simulated audience. A whatsmeow instance's audience is the
// phone's Status privacy and contacts: change it on the phone.
func (s *Server) setAudience(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	if in.Engine != whatsapp.EngineSandbox {
		return newError(fiber.StatusBadRequest, "The audience of a whatsmeow instance is the phone's Status privacy and contacts: change it on the phone")
	}
	var body audienceBody
	if err := s.deps.Validator.Decode(schemas.AudienceInput, c.Body(), &body); err != nil {
		return err
	}
	if err := s.putSandboxAudience(c.UserContext(), in.Name, &body); err != nil {
		return err
	}
	return s.getAudience(c)
}
