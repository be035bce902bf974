package webhooks_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/webhooks"
)

const waitLong = 20 * time.Second

// TestWorker_Deliver runs the outbox and worker on every database dialect.
func TestWorker_Deliver(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			exerciseWorker(t, d)
		})
	}
}

func exerciseWorker(t *testing.T, d store.Dialect) {
	ctx := context.Background()

	t.Run("SignedDelivery", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		rc := newReceiver(t, nil)
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		evID := b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		got := rc.requests()
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1", len(got))
		}
		r := got[0]
		if r.VerifyErr != nil {
			t.Fatalf("signature: %v", r.VerifyErr)
		}
		if r.ID != webhooks.DeliveryID(w.ID, evID) || r.Event.ID != evID || r.Event.Type != status.EventStatusPublished || r.Event.SpecVersion != "1.0" {
			t.Fatalf("id %s, event %+v", r.ID, r.Event)
		}
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != webhooks.ContentType {
			t.Fatalf("headers %v", r.Header)
		}
		tc, ok := tracing.Parse(r.Header.Get("traceparent"))
		evTC, _ := tracing.Parse(r.Event.TraceParent)
		if !ok || tc.TraceID != evTC.TraceID || r.Event.Origin.Platform != "n8n" {
			t.Fatalf("traceparent %q, event's %q, origin %+v", r.Header.Get("traceparent"), r.Event.TraceParent, r.Event.Origin)
		}
		ds := b.deliveries(t, webhooks.DeliveryFilter{})
		if a := ds[0].Attempts; len(a) != 1 || a[0].StatusCode != 200 || ds[0].Webhook != "default" || ds[0].FinalizedAt == nil {
			t.Fatalf("delivery %+v", ds[0])
		}
		// A wrong secret does not verify.
		wh, _ := standardwebhooks.NewWebhook(webhooks.NewSecret())
		if err := wh.Verify(r.Body, r.Header); err == nil {
			t.Fatal("verified with another secret")
		}
	})

	t.Run("FailsThenRecovers", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, func(c *webhooks.Config) { c.MaxAttempts = 10 }, nil)
		// The first 12 requests fail: 500, 503 with Retry-After, 408, and a timeout-free reset mix.
		rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
			switch {
			case n > 12:
				return 200
			case n%3 == 0:
				w.Header().Set("Retry-After", "0")
				return http.StatusServiceUnavailable
			case n%3 == 1:
				return http.StatusInternalServerError
			}
			return http.StatusRequestTimeout
		})
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		const n = 6
		ids := map[string]bool{}
		for range n {
			ids[b.emit(t, status.EventStatusPublished)] = true
		}
		waitFor(t, waitLong, "all delivered", func() bool { return b.allIn(t, n, webhooks.StateDelivered) })
		webhookIDs := map[string]map[string]bool{}
		for _, r := range rc.requests() {
			if r.VerifyErr != nil {
				t.Fatalf("signature: %v", r.VerifyErr)
			}
			if webhookIDs[r.Event.ID] == nil {
				webhookIDs[r.Event.ID] = map[string]bool{}
			}
			webhookIDs[r.Event.ID][r.ID] = true
		}
		for id := range ids {
			if len(webhookIDs[id]) != 1 {
				t.Fatalf("event %s: webhook-ids %v, want exactly one", id, webhookIDs[id])
			}
		}
		if got := len(rc.delivered()); got != n {
			t.Fatalf("%d 2xx deliveries, want %d", got, n)
		}
		retried := 0
		for _, dl := range b.deliveries(t, webhooks.DeliveryFilter{}) {
			if len(dl.Attempts) != dl.Attempt {
				t.Fatalf("attempt %d but %d attempts recorded", dl.Attempt, len(dl.Attempts))
			}
			if dl.Attempt > 1 {
				retried++
				if a := dl.Attempts[0]; a.StatusCode < 400 || a.Error == "" {
					t.Fatalf("first attempt %+v", a)
				}
			}
		}
		if retried == 0 {
			t.Fatal("no delivery was retried")
		}
	})

	t.Run("GoneDisablesWebhook", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return http.StatusGone })
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "discarded", func() bool { return b.allIn(t, 1, webhooks.StateDiscarded) })
		list, _ := b.svc.List(ctx, "sales")
		if list[0].Enabled || !strings.Contains(list[0].DisabledReason, "410") {
			t.Fatalf("webhook %+v", list[0])
		}
		b.emit(t, status.EventStatusPublished)
		if ds := b.deliveries(t, webhooks.DeliveryFilter{}); len(ds) != 1 {
			t.Fatalf("a disabled webhook got %d deliveries", len(ds))
		}
		if _, err := b.svc.Replay(ctx, "sales", webhooks.DeliveryID(w.ID, "x")); err == nil {
			t.Fatal("replay of an unknown delivery")
		}
		ds := b.deliveries(t, webhooks.DeliveryFilter{})
		if _, err := b.svc.Replay(ctx, "sales", ds[0].ID); err != webhooks.ErrWebhookDisabled {
			t.Fatalf("replay to a disabled webhook: %v", err)
		}
		if len(rc.requests()) != 1 {
			t.Fatalf("%d requests", len(rc.requests()))
		}
	})

	t.Run("RetryAfterHonoured", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		})
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		a := b.deliveries(t, webhooks.DeliveryFilter{})[0].Attempts
		if len(a) != 2 || a[0].StatusCode != 429 || a[1].At.Sub(a[0].At) < 900*time.Millisecond {
			t.Fatalf("attempts %+v: the retry came before Retry-After", a)
		}
	})

	t.Run("TimeoutIsRetried", func(t *testing.T) {
		t.Parallel()
		// A 1 s timeout and a first answer that never comes: at load 34 a
		// 200 ms timeout also cut off the prompt second answer, so the test
		// allows further timed-out attempts before the 200 and checks what
		// it is about: a timeout is recorded and retried.
		_, b := setup(t, d, func(c *webhooks.Config) { c.Timeout, c.Lease = time.Second, 10*time.Second }, nil)
		rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
			if n == 1 {
				select {
				case <-r.Context().Done():
				case <-time.After(time.Minute):
				}
			}
			return http.StatusOK
		})
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		a := b.deliveries(t, webhooks.DeliveryFilter{})[0].Attempts
		if len(a) < 2 || a[0].StatusCode != 0 || a[0].Error == "" || a[0].LatencyMs < 900 || a[len(a)-1].StatusCode != 200 {
			t.Fatalf("attempts %+v", a)
		}
		for _, x := range a[1 : len(a)-1] {
			if x.StatusCode != 0 || x.Error == "" {
				t.Fatalf("attempt %+v between the timeout and the 200: want another timeout", x)
			}
		}
	})

	t.Run("ClientErrorIsPermanent", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return http.StatusBadRequest })
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "failed", func() bool { return b.allIn(t, 1, webhooks.StateFailed) })
		ds := b.deliveries(t, webhooks.DeliveryFilter{State: webhooks.StateFailed})
		if ds[0].Attempt != 1 || ds[0].LastStatus != 400 || !strings.Contains(ds[0].LastError, "400") {
			t.Fatalf("delivery %+v", ds[0])
		}
	})

	t.Run("AttemptsRunOut", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, func(c *webhooks.Config) { c.MaxAttempts = 3 }, nil)
		rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return http.StatusBadGateway })
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "failed", func() bool { return b.allIn(t, 1, webhooks.StateFailed) })
		ds := b.deliveries(t, webhooks.DeliveryFilter{})
		if ds[0].Attempt != 3 || len(ds[0].Attempts) != 3 || len(rc.requests()) != 3 {
			t.Fatalf("delivery %+v, %d requests", ds[0], len(rc.requests()))
		}
		for i, a := range ds[0].Attempts {
			if a.Attempt != i+1 || a.StatusCode != 502 || a.At.IsZero() {
				t.Fatalf("attempt %d: %+v", i, a)
			}
		}
	})

	t.Run("RotationSignsWithBothSecrets", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		rc := newReceiver(t, nil)
		w := b.addWebhook(t, "default", rc.URL())
		rotated, err := b.svc.Rotate(ctx, "sales", "default")
		if err != nil || rotated.Secret == w.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.PreviousUntil == nil {
			t.Fatalf("rotate: %+v %v", rotated, err)
		}
		// Every request must verify with the old and with the new secret.
		rc.setSecrets(w.Secret, rotated.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		r := rc.requests()[0]
		if r.VerifyErr != nil || len(strings.Fields(r.Header.Get("webhook-signature"))) != 2 {
			t.Fatalf("signature %q: %v", r.Header.Get("webhook-signature"), r.VerifyErr)
		}
	})

	t.Run("RotationWithoutGrace", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, func(c *webhooks.Config) { c.SecretGrace = -1 }, nil)
		rc := newReceiver(t, nil)
		w := b.addWebhook(t, "default", rc.URL())
		rotated, err := b.svc.Rotate(ctx, "sales", "default")
		if err != nil {
			t.Fatal(err)
		}
		rc.setSecrets(rotated.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		r := rc.requests()[0]
		old, _ := standardwebhooks.NewWebhook(w.Secret)
		if r.VerifyErr != nil || old.Verify(r.Body, r.Header) == nil {
			t.Fatalf("new secret: %v; the old one still verifies", r.VerifyErr)
		}
	})

	t.Run("FilterAndFanOut", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		all, failedOnly := newReceiver(t, nil), newReceiver(t, nil)
		w1 := b.addWebhook(t, "all", all.URL(), "*")
		w2 := b.addWebhook(t, "failures", failedOnly.URL(), status.EventStatusFailed)
		all.setSecrets(w1.Secret)
		failedOnly.setSecrets(w2.Secret)
		b.emit(t, status.EventStatusPublished)
		b.emit(t, status.EventStatusFailed)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 3, webhooks.StateDelivered) })
		if len(all.delivered()) != 2 || len(failedOnly.delivered()) != 1 || failedOnly.delivered()[0].Event.Type != status.EventStatusFailed {
			t.Fatalf("all got %d, failures got %d", len(all.delivered()), len(failedOnly.delivered()))
		}
		if ds := b.deliveries(t, webhooks.DeliveryFilter{Webhook: "failures"}); len(ds) != 1 {
			t.Fatalf("filter by webhook: %d", len(ds))
		}
		if ds := b.deliveries(t, webhooks.DeliveryFilter{Event: status.EventStatusPublished}); len(ds) != 1 || ds[0].Webhook != "all" {
			t.Fatalf("filter by event type: %+v", ds)
		}
	})

	t.Run("ReplayKeepsWebhookID", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		rc := newReceiver(t, nil)
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		id := b.deliveries(t, webhooks.DeliveryFilter{})[0].ID
		if _, err := b.svc.Replay(ctx, "sales", id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, waitLong, "replayed", func() bool { return len(rc.delivered()) == 2 })
		waitFor(t, waitLong, "delivered again", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })
		got := rc.delivered()
		if got[0].ID != id || got[1].ID != id {
			t.Fatalf("ids %s %s, want %s", got[0].ID, got[1].ID, id)
		}
		if dl := b.deliveries(t, webhooks.DeliveryFilter{}); dl[0].Attempt != 2 || dl[0].MaxAttempts != 1+b.cfg.MaxAttempts {
			t.Fatalf("after replay %+v", dl[0])
		}
	})

	t.Run("DeleteDiscardsWaiting", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, func(c *webhooks.Config) { c.RetryBase, c.RetryMax = time.Hour, time.Hour }, nil)
		rc := newReceiver(t, func(int, *http.Request, http.ResponseWriter) int { return 500 })
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		b.emit(t, status.EventStatusPublished)
		waitFor(t, waitLong, "retryable", func() bool { return b.allIn(t, 1, webhooks.StateRetryable) })
		if err := b.svc.Delete(ctx, "sales", "default"); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.Delete(ctx, "sales", "default"); err != webhooks.ErrWebhookNotFound {
			t.Fatalf("second delete: %v", err)
		}
		if !b.allIn(t, 1, webhooks.StateDiscarded) {
			t.Fatalf("after delete: %+v", b.deliveries(t, webhooks.DeliveryFilter{})[0])
		}
	})

	t.Run("ExpiredLeaseIsDeliveredAgain", func(t *testing.T) {
		t.Parallel()
		// A worker that claimed rows and died (kill -9) leaves them delivering;
		// once the lease runs out another worker sends them.
		st := storetest.New(t, d)
		st.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: "h", State: "connected", CreatedAt: time.Now()})
		cfg := fastConfig()
		svc, _ := webhooks.NewService(st, nil, nil, nil, cfg)
		rc := newReceiver(t, nil)
		w, _, err := svc.Upsert(ctx, "sales", webhooks.WebhookInput{URL: rc.URL()})
		if err != nil {
			t.Fatal(err)
		}
		rc.setSecrets(w.Secret)
		b := &testBundle{store: st, svc: svc, rec: newRecorder(st, svc, nil)}
		for range 3 {
			b.emit(t, status.EventStatusPublished)
		}
		now := time.Now()
		claimed, err := st.OutboxClaimDue(ctx, &store.OutboxClaimDueParams{Now: now, LockedUntil: now.Add(300 * time.Millisecond), Token: "dead-worker", Limit: 10})
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim: %d %v", len(claimed), err)
		}
		worker, _ := webhooks.NewWorker(st, nil, cfg)
		worker.Start(ctx)
		t.Cleanup(func() { worker.Stop(ctx) })
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 3, webhooks.StateDelivered) })
		if since := time.Since(now); since < 300*time.Millisecond {
			t.Fatalf("delivered after %s, before the lease ran out", since)
		}
		if len(rc.delivered()) != 3 {
			t.Fatalf("%d deliveries", len(rc.delivered()))
		}
		// The dead worker's late outcome is refused.
		err = st.OutboxFinish(ctx, &store.OutboxFinishParams{ID: claimed[0].ID, Token: "dead-worker", State: "failed", Now: time.Now()})
		if err != store.ErrNotFound {
			t.Fatalf("stale finish: %v", err)
		}
	})

	t.Run("ConcurrentWorkersNeverShareARow", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		var dup atomic.Int32
		seen := make(map[string]bool)
		var mu = make(chan struct{}, 1)
		rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
			mu <- struct{}{}
			if seen[r.Header.Get("webhook-id")] {
				dup.Add(1)
			}
			seen[r.Header.Get("webhook-id")] = true
			<-mu
			return 200
		})
		w := b.addWebhook(t, "default", rc.URL())
		rc.setSecrets(w.Secret)
		for range 3 {
			other, _ := webhooks.NewWorker(b.store, nil, b.cfg)
			other.Start(ctx)
			b.rec.OnCommit(other.Wake)
			t.Cleanup(func() { other.Stop(ctx) })
		}
		const n = 60
		for range n {
			b.emit(t, status.EventStatusPublished)
		}
		waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, n, webhooks.StateDelivered) })
		if dup.Load() != 0 || len(rc.requests()) != n {
			t.Fatalf("%d duplicates, %d requests for %d events", dup.Load(), len(rc.requests()), n)
		}
	})

	t.Run("UnsafeURLRefused", func(t *testing.T) {
		t.Parallel()
		st := storetest.New(t, d)
		st.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: "h", State: "connected", CreatedAt: time.Now()})
		svc, _ := webhooks.NewService(st, nil, nil, nil, webhooks.Config{})
		for _, u := range []string{"http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://[::1]/", "file:///etc/passwd", "http://user:pw@example.com/", "http://10.1.2.3/"} {
			_, _, err := svc.Upsert(ctx, "sales", webhooks.WebhookInput{URL: u})
			var se *errcode.Error
			if !asStatus(err, &se) || se.Code != errcode.CodeInvalid || !strings.HasPrefix(se.Message, "Invalid request body: url: ") {
				t.Errorf("%s: %v", u, err)
			}
		}
		if _, _, err := svc.Upsert(ctx, "nope", webhooks.WebhookInput{URL: "https://example.com"}); err == nil || !strings.Contains(err.Error(), "Instance not found") {
			t.Errorf("unknown instance: %v", err)
		}
	})

	t.Run("UpsertByLabel", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, d, nil, nil)
		w := b.addWebhook(t, "", "http://127.0.0.1:1/a", "status.published")
		off := false
		u, created, err := b.svc.Upsert(ctx, "sales", webhooks.WebhookInput{URL: "http://127.0.0.1:1/b", Enabled: &off, Events: []string{"*"}})
		if err != nil || created || u.ID != w.ID || u.Secret != "" || u.URL != "http://127.0.0.1:1/b" || u.Enabled || len(u.Events) != 0 || u.HasAuthorization || u.Label != "default" {
			t.Fatalf("update: %+v %v %v", u, created, err)
		}
		list, _ := b.svc.List(ctx, "sales")
		if len(list) != 1 {
			t.Fatalf("list %d", len(list))
		}
	})
}

func asStatus(err error, target **errcode.Error) bool {
	se, ok := err.(*errcode.Error)
	if ok {
		*target = se
	}
	return ok
}

func newRecorder(st *store.Store, svc *webhooks.Service, wake func()) *events.Recorder {
	r := events.NewRecorder(st, discardLog())
	r.AddTxHook(svc.TxHook)
	if wake != nil {
		r.OnCommit(wake)
	}
	return r
}
