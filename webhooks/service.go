package webhooks

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/ssrf"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/nodes"
)

// Errors the front door maps to its answers by code (the server's HTTP table).
var (
	// ErrWebhookNotFound: no webhook with that label on the instance.
	ErrWebhookNotFound = errcode.New(errcode.CodeWebhookNotFound, "Webhook not found")
	// ErrWebhookDisabled: a replay was asked for a disabled or deleted webhook.
	ErrWebhookDisabled = errcode.New(errcode.CodeWebhookDisabled, "Webhook is disabled or deleted; enable it before replaying")
	// ErrDeliveryNotFound: no delivery with that id on the instance.
	ErrDeliveryNotFound = errcode.New(errcode.CodeDeliveryNotFound, "Delivery not found")
	// ErrDeliveryBusy: the delivery is being sent right now.
	ErrDeliveryBusy = errcode.New(errcode.CodeDeliveryBusy, "Delivery is being sent right now; try again when it is done")
	// ErrInboundNotFound: no inbound hook with that id (on the instance).
	ErrInboundNotFound = errcode.New(errcode.CodeInboundNotFound, "Inbound hook not found")
)

// AllEvents is the event filter entry that matches every event type.
const AllEvents = "*"

// DefaultLabel is the label of a webhook upserted without one.
const DefaultLabel = "default"

// outboxStore is what the webhooks need from the database.
type outboxStore interface {
	SingleWriter() bool
	InstanceGetByName(ctx context.Context, name string) (*store.Instance, error)
	WebhookUpsert(ctx context.Context, w *store.Webhook) (bool, error)
	WebhookGet(ctx context.Context, id string) (*store.Webhook, error)
	WebhookGetByLabel(ctx context.Context, instance, label string) (*store.Webhook, error)
	WebhookList(ctx context.Context, instance string) ([]*store.Webhook, error)
	WebhookListEnabledTx(ctx context.Context, tx *sql.Tx, instance string) ([]*store.Webhook, error)
	WebhookDelete(ctx context.Context, instance, label string, now time.Time) error
	WebhookRotateSecret(ctx context.Context, id, secret string, prevUntil, now time.Time) error
	WebhookDisable(ctx context.Context, id, reason string, now time.Time) error
	OutboxInsertTx(ctx context.Context, tx *sql.Tx, d *store.Delivery) error
	OutboxClaimDue(ctx context.Context, p *store.OutboxClaimDueParams) ([]*store.ClaimedDelivery, error)
	OutboxFinishMany(ctx context.Context, ps []*store.OutboxFinishParams) ([]string, error)
	OutboxRescue(ctx context.Context, now time.Time) (int64, error)
	OutboxList(ctx context.Context, p *store.OutboxListParams) ([]*store.Delivery, error)
	OutboxReplay(ctx context.Context, instance, id string, extraAttempts int, now time.Time) error
	InboundHookInsert(ctx context.Context, h *store.InboundHook) error
	InboundHookGet(ctx context.Context, id string) (*store.InboundHook, error)
	InboundHookList(ctx context.Context, instance string) ([]*store.InboundHook, error)
	InboundHookDelete(ctx context.Context, instance, id string) error
	InboundHookRotateSecret(ctx context.Context, instance, id, secret string, prevUntil time.Time) error
	InboundSeenInsert(ctx context.Context, hookID, messageID string, expiresAt time.Time) error
	InboundSeenDelete(ctx context.Context, hookID, messageID string) error
	InboundSeenPrune(ctx context.Context, now time.Time) (int64, error)
}

// Executor runs a node for an inbound hook; *nodes.Catalog is one.
type Executor interface {
	Execute(ctx context.Context, nodeID string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error)
}

// Service manages webhooks, inbound hooks and deliveries, writes the outbox
// ([Service.TxHook]) and verifies inbound requests ([Service.Receive]).
type Service struct {
	store outboxStore
	exec  Executor
	wake  func()
	log   *slog.Logger
	cfg   Config
	hooks *enabledHooks
}

// NewService returns the service. exec runs inbound hooks' nodes (nil:
// inbound requests fail with an internal error). w, when not nil, is the
// worker sending the deliveries: it is woken after a replay so the replay
// goes out at once, and it shares the service's memory of enabled webhooks
// (it disables a webhook whose receiver answers 410 Gone). Call NewService
// before starting w.
func NewService(st outboxStore, exec Executor, w *Worker, log *slog.Logger, cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: st, exec: exec, wake: func() {}, log: log, cfg: cfg, hooks: newEnabledHooks(st.SingleWriter())}
	if w != nil {
		s.wake = w.Wake
		w.hooks = s.hooks
	}
	return s, nil
}

// ChangingWebhooks announces a change to the webhooks table made outside
// this package — deleting an instance deletes its webhooks with it — and
// returns the func to call once that change has committed or failed. Until
// then no event is given webhooks remembered from before it.
func (s *Service) ChangingWebhooks() (done func()) { return s.hooks.change() }

// Webhook is a webhook as the API shows it. Secret is set only when the
// webhook is created or its secret rotated.
type Webhook struct {
	ID               string     `json:"id"`
	Instance         string     `json:"instance"`
	Label            string     `json:"label"`
	Enabled          bool       `json:"enabled"`
	URL              string     `json:"url"`
	Events           []string   `json:"events"`
	HasAuthorization bool       `json:"hasAuthorization"`
	DisabledReason   string     `json:"disabledReason,omitempty"`
	Secret           string     `json:"secret,omitempty"`
	PreviousUntil    *time.Time `json:"previousSecretValidUntil,omitempty"`
	CreatedAt        time.Time  `json:"createdAt"`
	UpdatedAt        time.Time  `json:"updatedAt"`
}

// WebhookInput is the body of POST /api/events/webhook/:instance
// (schemas/webhook.config.input.json).
type WebhookInput struct {
	Label         string   `json:"label"`
	Enabled       *bool    `json:"enabled"`
	URL           string   `json:"url"`
	Events        []string `json:"events"`
	Authorization string   `json:"authorization"`
}

func (s *Service) view(w *store.Webhook, now time.Time) *Webhook {
	v := &Webhook{ID: w.ID, Instance: w.Instance, Label: w.Label, Enabled: w.Enabled, URL: w.URL, Events: parseEvents(w.Events),
		HasAuthorization: w.Authorization != "", DisabledReason: w.DisabledReason, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.PreviousSecret != "" && now.Before(w.PreviousUntil) {
		t := w.PreviousUntil
		v.PreviousUntil = &t
	}
	return v
}

func (s *Service) instance(ctx context.Context, name string) error {
	_, err := s.store.InstanceGetByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return errcode.ErrInstanceNotFound
	}
	return err
}

// Upsert creates or replaces the instance's webhook with in.Label (default
// "default"): every field is taken from in (absent authorization clears it;
// absent enabled means true; absent or empty events means all). The secret
// is kept; a new webhook gets one, returned in Secret. Enabling a webhook
// clears its disabled reason. The URL must pass the address checks.
func (s *Service) Upsert(ctx context.Context, instance string, in WebhookInput) (*Webhook, bool, error) {
	if err := s.instance(ctx, instance); err != nil {
		return nil, false, err
	}
	if err := s.CheckURL(ctx, in.URL); err != nil {
		return nil, false, err
	}
	label := cmpOr(in.Label, DefaultLabel)
	enabled := in.Enabled == nil || *in.Enabled
	evs := normalizeEvents(in.Events)
	evJSON, _ := json.Marshal(evs)
	now := s.cfg.Now().UTC()
	w := &store.Webhook{ID: newID("wh_", 12), Instance: instance, Label: label, URL: in.URL, Events: string(evJSON),
		Authorization: in.Authorization, Enabled: enabled, Secret: NewSecret(), CreatedAt: now, UpdatedAt: now}
	secret := w.Secret
	done := s.hooks.change()
	created, err := s.store.WebhookUpsert(ctx, w)
	done()
	if err != nil {
		return nil, false, err
	}
	v := s.view(w, now)
	if created {
		v.Secret = secret
	}
	return v, created, nil
}

// List returns the instance's webhooks, secrets left out.
func (s *Service) List(ctx context.Context, instance string) ([]*Webhook, error) {
	if err := s.instance(ctx, instance); err != nil {
		return nil, err
	}
	ws, err := s.store.WebhookList(ctx, instance)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]*Webhook, 0, len(ws))
	for _, w := range ws {
		out = append(out, s.view(w, now))
	}
	return out, nil
}

// Delete removes the instance's webhook by label; its deliveries not yet
// sent become [StateDiscarded]. [ErrWebhookNotFound] when there is none.
func (s *Service) Delete(ctx context.Context, instance, label string) error {
	done := s.hooks.change()
	err := s.store.WebhookDelete(ctx, instance, label, s.cfg.Now())
	done()
	if errors.Is(err, store.ErrNotFound) {
		return ErrWebhookNotFound
	}
	return err
}

// Rotate gives the webhook a new secret, returned in Secret. The previous
// secret keeps signing deliveries (a second "v1,…" signature) for
// [Config.SecretGrace].
func (s *Service) Rotate(ctx context.Context, instance, label string) (*Webhook, error) {
	w, err := s.store.WebhookGetByLabel(ctx, instance, label)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrWebhookNotFound
	}
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	secret := NewSecret()
	done := s.hooks.change()
	err = s.store.WebhookRotateSecret(ctx, w.ID, secret, now.Add(s.cfg.grace()), now)
	done()
	if err != nil {
		return nil, err
	}
	if w, err = s.store.WebhookGet(ctx, w.ID); err != nil {
		return nil, err
	}
	v := s.view(w, now)
	v.Secret = secret
	return v, nil
}

// CheckURL reports whether a webhook URL is acceptable: http(s), a host, no
// user info, and — unless private addresses are allowed — every address the
// host resolves to is public. Errors are [errcode.CodeInvalid] with the
// reason. Deliveries are checked again when dialled.
func (s *Service) CheckURL(ctx context.Context, raw string) error {
	invalid := func(format string, a ...any) error {
		return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: url: "+format, a...)
	}
	if err := ssrf.CheckURL(raw); err != nil {
		return invalid("%s", err)
	}
	if s.cfg.AllowPrivate {
		return nil
	}
	u, _ := url.Parse(raw)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := s.cfg.LookupIP
		if lookup == nil {
			lookup = net.DefaultResolver.LookupNetIP
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err = lookup(lctx, "ip", u.Hostname())
		cancel()
		if err != nil || len(addrs) == 0 {
			return invalid("cannot resolve host %q", u.Hostname())
		}
	}
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(net.JoinHostPort(a.Unmap().String(), port)); err == nil && slices.Contains(s.cfg.AllowAddrs, ap) {
			continue
		}
		if err := ssrf.CheckAddr(a); err != nil {
			return invalid("%s", err)
		}
	}
	return nil
}

// TxHook is the [events.TxHook] that writes the outbox: one pending
// delivery per enabled webhook of the event's instance whose filter matches
// the event type, in the event's transaction.
func (s *Service) TxHook(ctx context.Context, tx *sql.Tx, ev *events.CloudEvent, body []byte) (wrote bool, err error) {
	ws, err := s.hooks.list(ctx, tx, ev.Instance, s.store.WebhookListEnabledTx)
	if err != nil {
		return false, fmt.Errorf("webhook outbox: %w", err)
	}
	now := s.cfg.Now().UTC()
	for _, w := range ws {
		if !Matches(parseEvents(w.Events), ev.Type) {
			continue
		}
		d := &store.Delivery{ID: DeliveryID(w.ID, ev.ID), WebhookID: w.ID, Instance: ev.Instance, EventID: ev.ID, EventType: ev.Type,
			EventTime: ev.Time, Body: string(body), State: string(StatePending), MaxAttempts: s.cfg.MaxAttempts, ScheduledAt: now, CreatedAt: now}
		if err := s.store.OutboxInsertTx(ctx, tx, d); err != nil {
			return false, fmt.Errorf("webhook outbox: %w", err)
		}
		wrote = true
	}
	return wrote, nil
}

// Matches reports whether an event filter takes an event type: an empty
// filter or one holding "*" takes every type.
func Matches(filter []string, eventType string) bool {
	return len(filter) == 0 || slices.Contains(filter, AllEvents) || slices.Contains(filter, eventType)
}

// DeliveryID is the webhook-id of an event's delivery to a webhook: stable
// across retries and replays, different per (webhook, event) pair.
func DeliveryID(webhookID, eventID string) string {
	h := sha256.Sum256([]byte(webhookID + "\x00" + eventID))
	return "msg_" + base64.RawURLEncoding.EncodeToString(h[:18])
}

// Delivery is a delivery as the API shows it. ID is the webhook-id header.
type Delivery struct {
	ID            string          `json:"id"`
	Webhook       string          `json:"webhook"`
	WebhookID     string          `json:"webhookId"`
	EventID       string          `json:"eventId"`
	EventType     string          `json:"eventType"`
	EventTime     time.Time       `json:"eventTime"`
	State         DeliveryState   `json:"state"`
	Attempt       int             `json:"attempt"`
	MaxAttempts   int             `json:"maxAttempts"`
	NextAttemptAt *time.Time      `json:"nextAttemptAt,omitempty"`
	LastStatus    int             `json:"lastStatus,omitempty"`
	LastError     string          `json:"lastError,omitempty"`
	CreatedAt     time.Time       `json:"createdAt"`
	FinalizedAt   *time.Time      `json:"finalizedAt,omitempty"`
	Attempts      []Attempt       `json:"attempts"`
	Event         json.RawMessage `json:"event"`
}

// Attempt is one try of a delivery: when, the receiver's HTTP status (0
// when none came back), how long it took and what went wrong.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode"`
	LatencyMs  int64     `json:"latencyMs"`
	Error      string    `json:"error,omitempty"`
}

// DeliveryFilter filters [Service.Deliveries]; zero fields do not filter.
type DeliveryFilter struct {
	State DeliveryState
	// Webhook is a webhook label.
	Webhook string
	// Event is an event type or an event id.
	Event string
	Limit int
}

// Deliveries lists the instance's deliveries, newest first, with their attempts.
func (s *Service) Deliveries(ctx context.Context, instance string, f DeliveryFilter) ([]*Delivery, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, errcode.Errorf(errcode.CodeInvalid, "Invalid state %q: use one of %s", f.State, statesList())
	}
	if err := s.instance(ctx, instance); err != nil {
		return nil, err
	}
	ds, err := s.store.OutboxList(ctx, &store.OutboxListParams{Instance: instance, State: string(f.State), WebhookLabel: f.Webhook, Event: f.Event, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]*Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryOf(d))
	}
	return out, nil
}

// EventDeliveries returns the deliveries the instance's events caused, event
// by event in the order given, each event's oldest first, with their
// attempts: the webhook part of a status's story in the event log.
func (s *Service) EventDeliveries(ctx context.Context, instance string, eventIDs []string) ([]*Delivery, error) {
	out := []*Delivery{}
	for _, id := range eventIDs {
		// At most one delivery per webhook and event: the limit is never reached.
		ds, err := s.store.OutboxList(ctx, &store.OutboxListParams{Instance: instance, Event: id, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for i := len(ds) - 1; i >= 0; i-- { // OutboxList is newest first
			out = append(out, deliveryOf(ds[i]))
		}
	}
	return out, nil
}

func deliveryOf(d *store.Delivery) *Delivery {
	v := &Delivery{ID: d.ID, Webhook: d.Label, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, EventTime: d.EventTime,
		State: DeliveryState(d.State), Attempt: d.Attempt, MaxAttempts: d.MaxAttempts, LastStatus: d.LastStatus, LastError: d.LastError,
		CreatedAt: d.CreatedAt, Attempts: make([]Attempt, 0, len(d.Attempts)), Event: json.RawMessage(d.Body)}
	if st := DeliveryState(d.State); st == StatePending || st == StateRetryable {
		t := d.ScheduledAt
		v.NextAttemptAt = &t
	}
	if !d.FinalizedAt.IsZero() {
		t := d.FinalizedAt
		v.FinalizedAt = &t
	}
	for _, a := range d.Attempts {
		v.Attempts = append(v.Attempts, Attempt{Attempt: a.Attempt, At: a.At, StatusCode: a.StatusCode, LatencyMs: a.Latency.Milliseconds(), Error: a.Error})
	}
	return v
}

// Replay sends a delivery again, whatever its state (except while it is
// being sent: [ErrDeliveryBusy]): it becomes pending, due now, with the same
// webhook-id and [Config.MaxAttempts] more attempts. Its webhook must exist
// and be enabled ([ErrWebhookDisabled]).
func (s *Service) Replay(ctx context.Context, instance, id string) (*Delivery, error) {
	ds, err := s.store.OutboxList(ctx, &store.OutboxListParams{Instance: instance, ID: id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, ErrDeliveryNotFound
	}
	w, err := s.store.WebhookGet(ctx, ds[0].WebhookID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !w.Enabled) {
		return nil, ErrWebhookDisabled
	}
	if err != nil {
		return nil, err
	}
	switch err := s.store.OutboxReplay(ctx, instance, id, s.cfg.MaxAttempts, s.cfg.Now()); {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrDeliveryNotFound
	case errors.Is(err, store.ErrConflict):
		return nil, ErrDeliveryBusy
	case err != nil:
		return nil, err
	}
	s.wake()
	list, err := s.Deliveries(ctx, instance, DeliveryFilter{Event: ds[0].EventID, Webhook: ds[0].Label})
	if err != nil {
		return nil, err
	}
	for _, d := range list {
		if d.ID == id {
			return d, nil
		}
	}
	return nil, ErrDeliveryNotFound
}

// NewSecret returns a fresh signing secret: "whsec_" and 32 random bytes in
// base64, the Standard Webhooks format.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func newID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func parseEvents(s string) []string {
	var evs []string
	json.Unmarshal([]byte(s), &evs)
	if evs == nil {
		evs = []string{}
	}
	return evs
}

// normalizeEvents drops duplicates and collapses a filter holding "*" to
// the empty (all) filter.
func normalizeEvents(in []string) []string {
	out := []string{}
	for _, e := range in {
		e = strings.TrimSpace(e)
		if e == AllEvents {
			return []string{}
		}
		if e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func statesList() string {
	var s []string
	for _, st := range DeliveryStates() {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
