package webhooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/ssrf"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
)

// UserAgent is sent with every delivery.
const UserAgent = "statusflow-webhooks/1"

// ContentType is the deliveries' content type: CloudEvents structured mode.
const ContentType = "application/cloudevents+json"

// Worker sends due deliveries. Several workers, in one process or many,
// may share a database: a row is claimed by one of them at a time, under a
// lease ([Config.Lease]). It is woken by [Worker.Wake] (after each committed
// event) and polls every [Config.PollInterval] for retries.
type Worker struct {
	store  outboxStore
	log    *slog.Logger
	cfg    Config
	retry  RetryPolicy
	client *http.Client
	hooks  *enabledHooks // the service's, see NewService

	wake chan struct{}
	slot chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewWorker returns a stopped worker. Its HTTP client is media's guarded
// client: webhook URLs never reach private addresses unless
// [Config.AllowPrivate]; redirects are not followed (a 3xx is a failed
// attempt).
func NewWorker(st outboxStore, log *slog.Logger, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := ssrf.NewGuardedClient(ssrf.GuardConfig{
		AllowPrivate: cfg.AllowPrivate, AllowAddrs: cfg.AllowAddrs, LookupIP: cfg.LookupIP,
		ConnectTimeout: min(cfg.Timeout, ssrf.DefaultConnectTimeout), HeaderTimeout: cfg.Timeout, Timeout: cfg.Timeout,
	})
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if tr, ok := client.Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		tr.MaxIdleConns = 4 * cfg.Concurrency
	}
	return &Worker{store: st, log: log, cfg: cfg, client: client,
		retry: ExponentialRetry{Base: cfg.RetryBase, Max: cfg.RetryMax, Jitter: cfg.Jitter},
		wake:  make(chan struct{}, 1), slot: make(chan struct{}, 1)}, nil
}

// Wake makes the worker look for due deliveries now. It never blocks; the
// events recorder calls it after each commit.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Start starts the delivery loop. A second Start while running does nothing.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel, w.done = cancel, make(chan struct{})
	go w.run(ctx, w.done)
	return nil
}

// Stop stops claiming, cancels deliveries in flight (they become retryable
// at once) and waits for them, or for ctx. A second Stop is harmless.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done = nil, nil
	w.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.client.CloseIdleConnections()
	return nil
}

func (w *Worker) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	results := make(chan *store.OutboxFinishParams, 4*w.cfg.Concurrency)
	completerDone := make(chan struct{})
	go w.complete(results, completerDone)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(results)
		<-completerDone
	}()
	sem := make(chan struct{}, w.cfg.Concurrency)
	// Claim when at least a quarter of the slots are free (or all are), so
	// a busy worker claims in batches rather than one row per completion.
	threshold := max(1, w.cfg.Concurrency/4)
	tick := time.NewTicker(w.cfg.PollInterval)
	defer tick.Stop()
	rescueEvery := max(w.cfg.PollInterval, min(w.cfg.Lease/4, 5*time.Second))
	var lastRescue, lastPrune time.Time
	for {
		if now := time.Now(); now.Sub(lastRescue) >= rescueEvery {
			lastRescue = now
			if n, err := w.store.OutboxRescue(ctx, w.cfg.Now()); err != nil && ctx.Err() == nil {
				w.log.Error("webhook outbox: rescue expired leases", "err", err)
			} else if n > 0 {
				w.log.Warn("webhook outbox: deliveries whose worker stopped are due again", "count", n)
			}
			if now.Sub(lastPrune) >= time.Minute {
				lastPrune = now
				if _, err := w.store.InboundSeenPrune(ctx, w.cfg.Now()); err != nil && ctx.Err() == nil {
					w.log.Error("inbound hooks: prune seen webhook-ids", "err", err)
				}
			}
		}
		more := false
		if free := cap(sem) - len(sem); free >= threshold {
			now := w.cfg.Now()
			token := newToken()
			claimed, err := w.store.OutboxClaimDue(ctx, &store.OutboxClaimDueParams{Now: now, LockedUntil: now.Add(w.cfg.Lease), Token: token, Limit: free})
			if err != nil && ctx.Err() == nil {
				w.log.Error("webhook outbox: claim", "err", err)
			}
			for _, c := range claimed {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					results <- w.deliver(ctx, c, token)
					<-sem
					select {
					case w.slot <- struct{}{}:
					default:
					}
				}()
			}
			more = len(claimed) == free
			if more && len(sem) < cap(sem) {
				continue
			}
		}
		var slot <-chan struct{}
		if more || cap(sem)-len(sem) < threshold {
			slot = w.slot
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-slot:
		case <-tick.C:
		}
	}
}

// complete records outcomes in batches (one transaction for all the
// outcomes waiting), until results is closed.
func (w *Worker) complete(results <-chan *store.OutboxFinishParams, done chan<- struct{}) {
	defer close(done)
	for p := range results {
		batch := []*store.OutboxFinishParams{p}
	drain:
		for len(batch) < 256 {
			select {
			case p, ok := <-results:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		lost, err := w.store.OutboxFinishMany(ctx, batch)
		cancel()
		if err != nil {
			// The rows stay delivering; their lease runs out and they are sent again.
			w.log.Error("webhook outbox: record outcomes; they will be sent again when their lease expires", "count", len(batch), "err", err)
		}
		for _, id := range lost {
			w.log.Warn("webhook delivery: lease lost before the outcome was recorded; it will be sent again", "webhookId", id)
		}
	}
}

// deliver makes one attempt of a claimed delivery and returns its outcome.
func (w *Worker) deliver(ctx context.Context, c *store.ClaimedDelivery, token string) *store.OutboxFinishParams {
	now := w.cfg.Now()
	p := &store.OutboxFinishParams{ID: c.ID, Token: token, Now: now, ScheduledAt: now}
	if c.Webhook == nil || !c.Webhook.Enabled {
		reason := "webhook deleted"
		if c.Webhook != nil {
			reason = "webhook disabled"
		}
		p.State = string(StateDiscarded)
		p.Attempt = &store.DeliveryAttempt{Attempt: c.Attempt, At: now, Error: reason + "; not sent"}
		return p
	}
	code, retryAfterHdr, latency, sendErr := w.send(ctx, c, now)
	defer func() { observe(p.State, code, latency, sendErr) }()
	end := w.cfg.Now()
	att := &store.DeliveryAttempt{Attempt: c.Attempt, At: now, StatusCode: code, Latency: latency}
	if sendErr != nil {
		att.Error = sendErr.Error()
	}
	p.Attempt, p.Now, p.ScheduledAt = att, end, end
	if ctx.Err() != nil && code == 0 {
		// Stopping: give the row back at once rather than wait for the lease.
		att.Error = "worker stopped before an answer came"
		p.State = string(StateRetryable)
		return p
	}
	switch o := classify(code); {
	case code != 0 && o == outcomeDelivered:
		p.State = string(StateDelivered)
	case code != 0 && o == outcomeGone:
		p.State = string(StateDiscarded)
		reason := fmt.Sprintf("receiver answered 410 Gone on %s", end.UTC().Format(time.RFC3339))
		done := w.hooks.change()
		err := w.store.WebhookDisable(context.WithoutCancel(ctx), c.WebhookID, reason, end)
		done()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			w.log.Error("webhook: disable after 410", "webhook", c.WebhookID, "err", err)
		}
		w.log.Warn("webhook disabled: receiver answered 410 Gone", "webhook", c.WebhookID, "instance", c.Instance)
	case code != 0 && o == outcomePermanent:
		p.State = string(StateFailed)
	case c.Attempt >= c.MaxAttempts:
		p.State = string(StateFailed)
	default:
		p.State = string(StateRetryable)
		p.ScheduledAt = w.retry.NextRetry(c.Attempt, end)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d, ok := retryAfter(retryAfterHdr, end); ok {
				p.ScheduledAt = end.Add(min(d, w.cfg.RetryAfterMax))
			}
		}
	}
	return p
}

// send signs and POSTs the event. It returns the receiver's status (0 when
// none came), its Retry-After header, the latency and an error describing a
// failure (transport error or non-2xx answer).
func (w *Worker) send(ctx context.Context, c *store.ClaimedDelivery, now time.Time) (code int, retryAfter string, latency time.Duration, err error) {
	body := []byte(c.Body)
	ctx, span := startDelivery(ctx, c, body)
	defer func() { endDelivery(span, code, err) }()
	sig, err := Sign(c.Webhook.Secret, c.Webhook.PreviousSecret, c.Webhook.PreviousUntil, c.ID, now, body)
	if err != nil {
		return 0, "", 0, fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, fmt.Errorf("request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", ContentType)
	h.Set("User-Agent", UserAgent)
	h.Set(standardwebhooks.HeaderWebhookID, c.ID)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	if c.Webhook.Authorization != "" {
		h.Set("Authorization", c.Webhook.Authorization)
	}
	tracing.Inject(ctx, propagation.HeaderCarrier(h))
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	latency = time.Since(start)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, "", latency, nil
	}
	msg := "receiver answered " + resp.Status
	if s := strings.TrimSpace(string(snippet)); s != "" {
		msg += ": " + strings.ToValidUTF8(s, "?")
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), latency, errors.New(msg)
}

// Sign returns the webhook-signature header value for a message: the "v1,…"
// signature by secret, followed by one by previous while now is before
// previousUntil (rotation grace), space separated as Standard Webhooks
// allows.
func Sign(secret, previous string, previousUntil time.Time, msgID string, ts time.Time, body []byte) (string, error) {
	secrets := []string{secret}
	if previous != "" && ts.Before(previousUntil) {
		secrets = append(secrets, previous)
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", err
		}
		sig, err := wh.Sign(msgID, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// startDelivery starts an attempt's client span, a child of the event's
// traceparent, so the receiver (whose traceparent header names this span)
// continues the trace that produced the event. The URL is left out of the
// attributes: receivers put secrets in paths and queries.
func startDelivery(ctx context.Context, c *store.ClaimedDelivery, body []byte) (context.Context, trace.Span) {
	var ev struct {
		TraceParent string `json:"traceparent"`
	}
	if json.Unmarshal(body, &ev) == nil {
		if tc, ok := tracing.Parse(ev.TraceParent); ok {
			ctx = tracing.With(ctx, tc)
		}
	}
	attrs := []attribute.KeyValue{attribute.String("http.request.method", http.MethodPost),
		attribute.String("statusflow.webhook.id", c.WebhookID), attribute.Int("http.request.resend_count", max(c.Attempt-1, 0))}
	if u, err := url.Parse(c.Webhook.URL); err == nil {
		attrs = append(attrs, attribute.String("server.address", u.Hostname()), attribute.String("url.scheme", u.Scheme))
	}
	return tracing.Tracer().Start(ctx, "webhook POST", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endDelivery records the receiver's status (an error from 400 on, as
// OpenTelemetry's HTTP client conventions say) and ends the span.
func endDelivery(span trace.Span, code int, err error) {
	if code != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", code))
	}
	if err != nil && code == 0 {
		span.SetAttributes(attribute.String("error.type", fmt.Sprintf("%T", err)))
	} else if code >= 400 {
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(code)))
	}
	tracing.End(span, err)
}

// observe counts an attempt in the Prometheus metrics: its outcome (the
// delivery's new state) and, for a failed attempt, why.
func observe(state string, code int, latency time.Duration, err error) {
	metrics.WebhookAttempt(state, latency)
	if err == nil {
		return
	}
	var ne net.Error
	switch {
	case code == http.StatusGone:
		metrics.WebhookFailure("gone")
	case code != 0:
		metrics.WebhookFailure(fmt.Sprintf("%dxx", code/100))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		metrics.WebhookFailure("timeout")
	case errors.Is(err, ssrf.ErrForbiddenAddress):
		metrics.WebhookFailure("forbidden_address")
	default:
		metrics.WebhookFailure("network")
	}
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
