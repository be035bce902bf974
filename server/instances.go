package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/schemas"
)

// InstanceStore is what the instance routes read from the database; the
// other groups use it to check the instance in their path exists.
// *store.Store is one.
type InstanceStore interface {
	// InstanceGetByName returns [store.ErrNotFound] when there is none.
	InstanceGetByName(ctx context.Context, name string) (*store.Instance, error)
	InstanceList(ctx context.Context) ([]*store.Instance, error)
}

type instanceCreateBody struct {
	Name     string        `json:"name"`
	Engine   string        `json:"engine"`
	Token    string        `json:"token"`
	Audience *audienceBody `json:"audience"`
}

// instanceView is an instance as the API shows it.
type instanceView struct {
	Name       string         `json:"name"`
	Engine     string         `json:"engine"`
	Status     string         `json:"status"`
	Connection connectionView `json:"connection"`
	Token      string         `json:"token,omitempty"`
}

type connectionView struct {
	State     string `json:"state"`
	NumberJID string `json:"numberJid,omitempty"`
}

func (s *Server) createInstance(c *fiber.Ctx) error {
	var body instanceCreateBody
	if err := s.deps.Validator.Decode(schemas.InstanceCreate, c.Body(), &body); err != nil {
		return err
	}
	if body.Engine == "" {
		body.Engine = whatsapp.EngineWhatsmeow
	}
	if !s.deps.Manager.HasEngine(body.Engine) {
		return newError(fiber.StatusBadRequest, fmt.Sprintf("Invalid request body: engine %q is not available on this server", body.Engine))
	}
	tok := body.Token
	if tok == "" {
		tok = auth.NewToken("sfi_")
	}
	if auth.HashToken(tok) == s.auth.AccountHash() {
		return newError(fiber.StatusBadRequest, "Invalid request body: token must differ from the account token")
	}
	if body.Audience != nil && body.Engine == whatsapp.EngineSandbox {
		if _, err := body.Audience.sandboxAudience(); err != nil {
			return err
		}
	}
	in, sess, err := s.deps.Manager.Create(c.UserContext(), body.Name, body.Engine, auth.HashToken(tok))
	if errors.Is(err, store.ErrConflict) {
		if _, gerr := s.deps.Instances.InstanceGetByName(c.UserContext(), body.Name); gerr == nil {
			return newError(fiber.StatusConflict, "Instance name already in use")
		}
		return newError(fiber.StatusConflict, "Token already in use by another instance")
	}
	if err != nil {
		return err
	}
	if body.Audience != nil && body.Engine == whatsapp.EngineSandbox {
		if err := s.putSandboxAudience(c.UserContext(), in.Name, body.Audience); err != nil {
			return err
		}
	}
	v := viewOf(in, sess)
	v.Token = tok
	return reply(c, fiber.StatusCreated, "Instance created", fiber.Map{"instance": v})
}

func viewOf(in *store.Instance, sess whatsapp.Session) instanceView {
	state, jid := in.State, in.DeviceJID
	if sess != nil {
		state, jid = string(sess.State()), sess.JID()
	}
	return instanceView{Name: in.Name, Engine: in.Engine, Status: state, Connection: connectionView{State: state, NumberJID: jid}}
}

func (s *Server) listInstances(c *fiber.Ctx) error {
	ctx := c.UserContext()
	list, err := s.deps.Instances.InstanceList(ctx)
	if err != nil {
		return err
	}
	var only map[string]bool
	if q := c.Query("instanceName"); q != "" {
		only = map[string]bool{}
		for _, n := range strings.Split(q, ",") {
			only[strings.TrimSpace(n)] = true
		}
	}
	p := PrincipalOf(c)
	out := []instanceView{}
	for _, in := range list {
		if (!p.Account && in.Name != p.Instance) || (only != nil && !only[in.Name]) {
			continue
		}
		sess, _ := s.deps.Manager.Session(ctx, in.Name)
		out = append(out, viewOf(in, sess))
	}
	return OK(c, fmt.Sprintf("%d Instances found", len(out)), fiber.Map{"instances": out})
}

// session returns the :instance's session or 404 Instance not found.
func (s *Server) session(c *fiber.Ctx) (*store.Instance, whatsapp.Session, error) {
	name := c.Params("instance")
	if name == "" {
		return nil, nil, newError(fiber.StatusBadRequest, "Instance name is required")
	}
	in, err := s.deps.Instances.InstanceGetByName(c.UserContext(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, newError(fiber.StatusNotFound, "Instance not found")
	}
	if err != nil {
		return nil, nil, err
	}
	sess, err := s.deps.Manager.Session(c.UserContext(), name)
	if err != nil {
		return nil, nil, err
	}
	return in, sess, nil
}

func (s *Server) connectInstance(c *fiber.Ctx) error {
	_, sess, err := s.session(c)
	if err != nil {
		return err
	}
	number := strings.TrimLeft(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, c.Query("number")), "0")
	if c.Query("number") != "" && (len(number) < 7 || len(number) > 15) {
		return newError(fiber.StatusBadRequest, "Invalid number: give the phone number in international format, digits only")
	}
	p, err := sess.Connect(c.UserContext(), number)
	if err != nil {
		return newError(fiber.StatusServiceUnavailable, "Failed to connect: "+s.reason(c, err))
	}
	switch {
	case p.PairingCode != "":
		return OK(c, "Enter the pairing code on the phone: WhatsApp > Linked devices > Link with phone number", fiber.Map{"status": "pairing", "pairingCode": p.PairingCode})
	case p.QRCode != "":
		png, err := qrcode.Encode(p.QRCode, qrcode.Medium, 256)
		if err != nil {
			return err
		}
		return OK(c, "Scan the QR code with WhatsApp > Linked devices", fiber.Map{"status": "qr", "qrCode": p.QRCode,
			"qrCodeBase64": "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)})
	}
	return OK(c, "Instance already connected", fiber.Map{"status": string(p.State)})
}

func (s *Server) reconnectInstance(c *fiber.Ctx) error {
	_, sess, err := s.session(c)
	if err != nil {
		return err
	}
	if err := sess.Reconnect(c.UserContext()); errors.Is(err, whatsapp.ErrNotPaired) {
		return newError(fiber.StatusBadRequest, "Instance has no linked device; connect it first")
	} else if err != nil {
		return newError(fiber.StatusServiceUnavailable, "Failed to reconnect: "+s.reason(c, err))
	}
	return OK(c, "Reconnecting", fiber.Map{"status": string(sess.State())})
}

func (s *Server) logoutInstance(c *fiber.Ctx) error {
	_, sess, err := s.session(c)
	if err != nil {
		return err
	}
	if err := sess.Logout(c.UserContext()); err != nil && !errors.Is(err, whatsapp.ErrNotPaired) {
		return newError(fiber.StatusInternalServerError, "Failed to log out: "+s.reason(c, err))
	}
	return OK(c, "Instance logged out", fiber.Map{"status": string(whatsapp.StateLoggedOut)})
}

func (s *Server) deleteInstance(c *fiber.Ctx) error {
	name := c.Params("instance")
	done := func() {}
	if s.deps.Webhooks != nil {
		// Its webhooks go with it: none may be remembered past the delete.
		done = s.deps.Webhooks.ChangingWebhooks()
	}
	err := s.deps.Manager.Delete(c.UserContext(), name)
	done()
	s.forgetInstance(c)
	if errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "Instance not found")
	}
	if err != nil {
		return err
	}
	if err := s.deps.SandboxMedia.RemoveInstance(name); err != nil {
		// The instance is gone; its preview files are only disk space.
		s.deps.Log.Warn("sandbox media not removed", "instance", name, "err", err.Error())
	}
	metrics.InstanceRemoved(name)
	return OK(c, "Instance deleted", fiber.Map{"instance": fiber.Map{"name": name}})
}

// forgetInstance makes the deleted :instance's token stop working now, also
// on a new instance given the same name.
func (s *Server) forgetInstance(c *fiber.Ctx) { s.auth.Forget(c.Params("instance")) }
