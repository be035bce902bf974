package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/schemas"
)

// Errors of [Service.Receive]; the server's HTTP table answers 401 for the
// first three codes and 409 for a replay.
var (
	// ErrMissingSignature: webhook-id, webhook-timestamp or webhook-signature is missing.
	ErrMissingSignature = errcode.New(errcode.CodeSignatureMissing, "Missing webhook-id, webhook-timestamp or webhook-signature header")
	// ErrBadSignature: no signature matches the hook's secret(s), or the headers are malformed.
	ErrBadSignature = errcode.New(errcode.CodeSignatureInvalid, "Invalid webhook signature")
	// ErrTimestamp: webhook-timestamp is more than 5 minutes from the server's clock.
	ErrTimestamp = errcode.New(errcode.CodeTimestampOutOfRange, "Webhook timestamp is too old or too new")
	// ErrReplayed: the hook already accepted this webhook-id.
	ErrReplayed = errcode.New(errcode.CodeReplayed, "Webhook already received (webhook-id replayed)")
)

// AnyNode as an inbound hook's node lets the request body name the node.
const AnyNode = "*"

// InboundHook is an inbound hook as the API shows it. Secret is set only
// when it is created or rotated. Path is where to POST (the front door
// makes URL absolute).
type InboundHook struct {
	ID            string     `json:"id"`
	Instance      string     `json:"instance"`
	Node          string     `json:"node"`
	Description   string     `json:"description,omitempty"`
	URL           string     `json:"url"`
	Secret        string     `json:"secret,omitempty"`
	PreviousUntil *time.Time `json:"previousSecretValidUntil,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
}

// InboundInput is the body of POST /api/events/inbound/:instance
// (schemas/webhook.inbound.create.input.json).
type InboundInput struct {
	// Node is the node the hook runs; defaults to "status.publish". "*" lets
	// each request name its node.
	Node        string `json:"node"`
	Description string `json:"description"`
}

// InboundPath is the path of an inbound hook's URL.
func InboundPath(id string) string { return "/hooks/in/" + id }

func (s *Service) inboundView(h *store.InboundHook, now time.Time) *InboundHook {
	v := &InboundHook{ID: h.ID, Instance: h.Instance, Node: h.Node, Description: h.Description, URL: InboundPath(h.ID), CreatedAt: h.CreatedAt}
	if h.PreviousSecret != "" && now.Before(h.PreviousUntil) {
		t := h.PreviousUntil
		v.PreviousUntil = &t
	}
	return v
}

// nodeChecker is the part of *nodes.Catalog that tells whether a node exists.
type nodeChecker interface {
	Get(id string) (nodes.Descriptor, bool)
}

// CreateInbound creates an inbound hook on the instance with a fresh
// secret, returned in Secret.
func (s *Service) CreateInbound(ctx context.Context, instance string, in InboundInput) (*InboundHook, error) {
	if err := s.instance(ctx, instance); err != nil {
		return nil, err
	}
	node := cmpOr(in.Node, nodes.PublishStatusID)
	if nc, ok := s.exec.(nodeChecker); ok && node != AnyNode {
		d, found := nc.Get(node)
		if !found || d.Kind != nodes.KindAction {
			return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: node %q is not an action node", node)
		}
	}
	now := s.cfg.Now().UTC()
	h := &store.InboundHook{ID: newID("ih_", 18), Instance: instance, Node: node, Description: in.Description, Secret: NewSecret(), CreatedAt: now}
	if err := s.store.InboundHookInsert(ctx, h); err != nil {
		return nil, err
	}
	v := s.inboundView(h, now)
	v.Secret = h.Secret
	return v, nil
}

// ListInbound returns the instance's inbound hooks, secrets left out.
func (s *Service) ListInbound(ctx context.Context, instance string) ([]*InboundHook, error) {
	if err := s.instance(ctx, instance); err != nil {
		return nil, err
	}
	hs, err := s.store.InboundHookList(ctx, instance)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]*InboundHook, 0, len(hs))
	for _, h := range hs {
		out = append(out, s.inboundView(h, now))
	}
	return out, nil
}

// DeleteInbound removes an inbound hook; [ErrInboundNotFound] when the
// instance has none with that id.
func (s *Service) DeleteInbound(ctx context.Context, instance, id string) error {
	err := s.store.InboundHookDelete(ctx, instance, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInboundNotFound
	}
	return err
}

// RotateInbound gives an inbound hook a new secret, returned in Secret; the
// previous one is still accepted for [Config.SecretGrace].
func (s *Service) RotateInbound(ctx context.Context, instance, id string) (*InboundHook, error) {
	now := s.cfg.Now().UTC()
	secret := NewSecret()
	err := s.store.InboundHookRotateSecret(ctx, instance, id, secret, now.Add(s.cfg.grace()))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInboundNotFound
	}
	if err != nil {
		return nil, err
	}
	h, err := s.store.InboundHookGet(ctx, id)
	if err != nil {
		return nil, err
	}
	v := s.inboundView(h, now)
	v.Secret = secret
	return v, nil
}

// InboundEnvelope is the full form of an inbound request body
// (schemas/webhook.inbound.input.json). A body without an object `input`
// is taken whole as the input of the hook's node.
type InboundEnvelope struct {
	// Node must be the hook's node, or any action when the hook's node is "*".
	Node string `json:"node"`
	// Instance, when set, must be the hook's instance.
	Instance string          `json:"instance"`
	Input    json.RawMessage `json:"input"`
	Origin   nodes.Origin    `json:"origin"`
	// IdempotencyKey defaults to one derived from the hook and webhook-id.
	IdempotencyKey string `json:"idempotencyKey"`
}

// InboundResult is what an accepted inbound request did.
type InboundResult struct {
	HookID    string `json:"hookId"`
	Instance  string `json:"instance"`
	Node      string `json:"node"`
	WebhookID string `json:"webhookId"`
	TraceID   string `json:"traceId"`
	Output    any    `json:"output"`
}

// Receive handles a request to an inbound hook: it verifies the Standard
// Webhooks signature with the hook's secret (or the previous one during its
// grace) and the timestamp tolerance (±5 minutes), refuses a webhook-id the
// hook already accepted, and runs the node with origin platform "webhook"
// and origin.extra.hookId (plus webhookId). traceParent continues the
// caller's trace.
//
// Errors: [ErrInboundNotFound], [ErrMissingSignature], [ErrBadSignature],
// [ErrTimestamp], [ErrReplayed], or the node's *errcode.Error. When the node
// fails with a retryable error, the webhook-id is forgotten so the sender's
// retry is taken (the derived idempotency key still keeps it at most once).
func (s *Service) Receive(ctx context.Context, hookID string, body []byte, header http.Header, traceParent string) (*InboundResult, error) {
	h, err := s.store.InboundHookGet(ctx, hookID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInboundNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := verify(h, body, header, s.cfg.Now()); err != nil {
		return nil, err
	}
	msgID := header.Get(standardwebhooks.HeaderWebhookID)

	env, err := parseInbound(body)
	if err != nil {
		return nil, err
	}
	node := cmpOr(env.Node, h.Node)
	if node == AnyNode {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: node is required: this hook runs the node the body names")
	}
	if h.Node != AnyNode && node != h.Node {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: this hook runs node %s, not %s", h.Node, node)
	}
	if env.Instance != "" && env.Instance != h.Instance {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: this hook publishes on instance %s, not %s", h.Instance, env.Instance)
	}
	origin := env.Origin
	origin.Platform = "webhook"
	extra := map[string]any{}
	if len(origin.Extra) > 0 {
		json.Unmarshal(origin.Extra, &extra)
	}
	extra["hookId"], extra["webhookId"] = h.ID, msgID
	origin.Extra, _ = json.Marshal(extra)
	key := cmpOr(env.IdempotencyKey, "inbound:"+h.ID+":"+msgID)

	if s.exec == nil {
		return nil, errcode.Errorf(errcode.CodeInternal, "Inbound hooks are not available: no node catalog")
	}
	now := s.cfg.Now()
	if err := s.store.InboundSeenInsert(ctx, h.ID, msgID, now.Add(2*InboundToleranceDefault+time.Minute)); errors.Is(err, store.ErrConflict) {
		return nil, ErrReplayed
	} else if err != nil {
		return nil, err
	}
	res, err := s.exec.Execute(ctx, node, nodes.ExecuteRequest{Instance: h.Instance, Input: env.Input, Origin: origin, TraceParent: traceParent, IdempotencyKey: key})
	if err != nil {
		if se := errcode.AsError(err); se.Code.Retryable() {
			if derr := s.store.InboundSeenDelete(context.WithoutCancel(ctx), h.ID, msgID); derr != nil {
				s.log.Error("inbound hook: forget webhook-id", "hook", h.ID, "err", derr)
			}
		}
		return nil, err
	}
	return &InboundResult{HookID: h.ID, Instance: h.Instance, Node: node, WebhookID: msgID, TraceID: res.TraceID, Output: res.Output}, nil
}

// verify checks the signature with the hook's secrets.
func verify(h *store.InboundHook, body []byte, header http.Header, now time.Time) error {
	secrets := []string{h.Secret}
	if h.PreviousSecret != "" && now.Before(h.PreviousUntil) {
		secrets = append(secrets, h.PreviousSecret)
	}
	for _, sec := range secrets {
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil {
			return err
		}
		err = wh.Verify(body, header)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, standardwebhooks.ErrRequiredHeaders):
			return ErrMissingSignature
		case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
			return ErrTimestamp
		}
	}
	return ErrBadSignature
}

// parseInbound reads the body: the envelope when it has an object `input`,
// else the whole body as the input.
func parseInbound(body []byte) (*InboundEnvelope, error) {
	doc, err := schemas.ParseJSON(body)
	if err != nil {
		return nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid request body: expected a JSON object")
	}
	if _, isEnv := m["input"].(map[string]any); !isEnv {
		return &InboundEnvelope{Input: bytes.Clone(body)}, nil
	}
	var env InboundEnvelope
	if err := schemas.Default().Decode(schemas.WebhookInboundInput, body, &env); err != nil {
		return nil, err
	}
	return &env, nil
}
