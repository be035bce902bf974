package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// SandboxStore is what the sandbox routes read and write: the statuses a
// sandbox instance would have sent (with their media) and its simulated
// audiences. *store.Store is one.
type SandboxStore interface {
	SandboxStatusList(ctx context.Context, instance string, limit int) ([]*store.SandboxStatus, error)
	// SandboxStatusMedia returns [store.ErrNotFound] when there is none.
	SandboxStatusMedia(ctx context.Context, instance, messageID string) (*store.SandboxStatus, error)
	SandboxAudiencePut(ctx context.Context, instance string, a *store.SandboxAudience) error
}

// sandboxStatuses is GET /api/sandbox/:instance/statuses: what a sandbox
// instance would have sent, newest first.
func (s *Server) sandboxStatuses(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	if in.Engine != "sandbox" {
		return newError(fiber.StatusBadRequest, "Instance is not a sandbox instance")
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	list, err := s.deps.Sandbox.SandboxStatusList(c.UserContext(), in.Name, limit)
	if err != nil {
		return err
	}
	out := make([]fiber.Map, 0, len(list))
	for _, r := range list {
		v, err := s.sandboxView(c.UserContext(), r)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return OK(c, itoa(len(out))+" statuses found", fiber.Map{"statuses": out})
}

func (s *Server) sandboxView(ctx context.Context, r *store.SandboxStatus) (fiber.Map, error) {
	msg, err := whatsapp.RecordedMessageJSON(r)
	if err != nil {
		return nil, fmt.Errorf("sandbox status %s: %w", r.MessageID, err)
	}
	v := fiber.Map{
		"messageId": r.MessageID, "type": r.Type, "revoked": r.Revoked,
		"createdAt": r.CreatedAt.Format(time.RFC3339Nano), "message": msg,
		"source": "", "traceId": "",
	}
	if st, err := s.deps.Statuses.StatusGet(ctx, r.Instance, r.MessageID); err == nil {
		v["source"], v["traceId"] = st.Source, st.TraceID
	}
	if r.MediaMimetype != "" {
		v["media"] = fiber.Map{"mimetype": r.MediaMimetype, "bytes": r.MediaBytes, "sha256": r.MediaSHA256}
	}
	return v, nil
}

// schema is GET /schemas/:name — the embedded schema whose $id ends in that name.
func (s *Server) schema(c *fiber.Ctx) error {
	name := strings.TrimSuffix(c.Params("name"), ".json")
	raw := s.deps.Validator.Raw(name)
	if raw == nil {
		return newError(fiber.StatusNotFound, "Schema not found")
	}
	c.Set(fiber.HeaderContentType, "application/schema+json")
	return c.Send(raw)
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return OK(c, "alive", nil)
}

// readyz runs every readiness check and says in words what is wrong.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	names := make([]string, 0, len(s.deps.Checks))
	for n := range s.deps.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	checks := fiber.Map{}
	var problems []string
	for _, n := range names {
		if err := s.deps.Checks[n](ctx); err != nil {
			msg := s.reason(c, err)
			if strings.HasPrefix(err.Error(), "cannot write") && !strings.HasPrefix(msg, "cannot write") {
				msg = "cannot write: " + msg // the write probe's own words, the driver's kept in the log
			}
			checks[n] = fiber.Map{"ok": false, "error": msg}
			problems = append(problems, n+": "+msg)
		} else {
			checks[n] = fiber.Map{"ok": true}
		}
	}
	instances := fiber.Map{}
	hints := fiber.Map{} // instance → what to do about its state
	if list, err := s.deps.Instances.InstanceList(ctx); err == nil {
		for _, in := range list {
			state := in.State
			if sess, err := s.deps.Manager.Session(ctx, in.Name); err == nil {
				state = string(sess.State())
			}
			instances[in.Name] = state
			if advice := whatsapp.ReasonAdvice(s.deps.Manager.Reason(in.Name)); advice != "" {
				hints[in.Name] = advice
			}
		}
	}
	if len(problems) > 0 {
		c.Status(fiber.StatusServiceUnavailable)
		return c.JSON(fiber.Map{"success": false, "message": "not ready: " + strings.Join(problems, "; "), "checks": checks, "instances": instances, "hints": hints,
			"error": fiber.Map{"message": "not ready: " + strings.Join(problems, "; ")}, "traceId": traceOf(c).TraceID})
	}
	return OK(c, "ready", fiber.Map{"checks": checks, "instances": instances, "hints": hints})
}

func itoa(n int) string { return strconv.Itoa(n) }

// sandboxMedia is GET /api/sandbox/:instance/media/:messageId: the file the
// sandbox kept for a recorded status (the plaintext a real upload would
// have sent), for the console's preview. The row is what counts: a status
// whose file was not kept (too large, or recorded before files were kept)
// answers 404.
func (s *Server) sandboxMedia(c *fiber.Ctx) error {
	in, _, err := s.session(c)
	if err != nil {
		return err
	}
	if in.Engine != whatsapp.EngineSandbox {
		return newError(fiber.StatusBadRequest, "Instance is not a sandbox instance")
	}
	notFound := newError(fiber.StatusNotFound, "Media not found")
	rec, err := s.deps.Sandbox.SandboxStatusMedia(c.UserContext(), in.Name, c.Params("messageId"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	if rec.MediaMimetype == "" {
		return notFound
	}
	// Only the instance name and the hash from the row reach the path,
	// both checked by Path; nothing from the request does.
	p, err := s.deps.SandboxMedia.Path(in.Name, rec.MediaSHA256)
	if err != nil {
		return notFound
	}
	f, err := os.Open(p)
	if err != nil {
		return notFound
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	c.Set(fiber.HeaderContentType, rec.MediaMimetype)
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.SendStream(f, int(fi.Size())) // fasthttp closes f when sent
}
