package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/webhooks"
)

// received is one request a receiver got.
type received struct {
	ID        string
	Header    http.Header
	Body      []byte
	Event     events.CloudEvent
	Status    int
	At        time.Time
	VerifyErr error
}

// receiver is a webhook receiver on loopback that verifies every request
// with the Standard Webhooks reference library and answers what answer says.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	arrivals atomic.Int32
	mu       sync.Mutex
	secrets  []string
	reqs     []received
	answer   func(n int, r *http.Request, w http.ResponseWriter) int
	notify   chan struct{}
}

func newReceiver(t testing.TB, answer func(n int, r *http.Request, w http.ResponseWriter) int) *receiver {
	t.Helper()
	rc := &receiver{t: t, answer: answer, notify: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/hook" }

// setSecrets sets the secrets each request must verify with (every one of them).
func (rc *receiver) setSecrets(s ...string) {
	rc.mu.Lock()
	rc.secrets = s
	rc.mu.Unlock()
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := int(rc.arrivals.Add(1))
	rc.mu.Lock()
	secrets := rc.secrets
	rc.mu.Unlock()
	var verr error
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			verr = err
		}
	}
	code := http.StatusOK
	if verr != nil {
		code = http.StatusUnauthorized
	} else if rc.answer != nil {
		code = rc.answer(n, r, w)
	}
	got := received{ID: r.Header.Get("webhook-id"), Header: r.Header.Clone(), Body: body, Status: code, At: time.Now(), VerifyErr: verr}
	json.Unmarshal(body, &got.Event)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, got)
	rc.mu.Unlock()
	select {
	case rc.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(code)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// delivered returns the requests answered 2xx.
func (rc *receiver) delivered() []received {
	var out []received
	for _, r := range rc.requests() {
		if r.Status/100 == 2 {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// fastConfig retries in milliseconds.
func fastConfig() webhooks.Config {
	return webhooks.Config{AllowPrivate: true, MaxAttempts: 5, RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Timeout: 2 * time.Second, PollInterval: 10 * time.Millisecond}
}

type testBundle struct {
	store  *store.Store
	rec    *events.Recorder
	svc    *webhooks.Service
	worker *webhooks.Worker
	cfg    webhooks.Config
}

// setup opens a fresh database of dialect d with an instance "sales", and a
// service, recorder and started worker on it.
func setup(t *testing.T, d store.Dialect, configure func(*webhooks.Config), exec webhooks.Executor) (*webhooks.Service, *testBundle) {
	t.Helper()
	ctx := context.Background()
	st := storetest.New(t, d)
	if err := st.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: uuid.NewString(), State: "connected", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	if configure != nil {
		configure(&cfg)
	}
	w, err := webhooks.NewWorker(st, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := webhooks.NewService(st, exec, w, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewRecorder(st, discardLog())
	rec.AddTxHook(svc.TxHook)
	rec.OnCommit(w.Wake)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })
	return svc, &testBundle{store: st, rec: rec, svc: svc, worker: w, cfg: cfg}
}

// emit records a status.published event on instance "sales" and returns its id.
func (b *testBundle) emit(t testing.TB, typ string) string {
	t.Helper()
	id := uuid.NewString()
	tc := tracing.New()
	err := b.rec.Emit(context.Background(), status.Event{ID: id, Type: typ, Instance: "sales", Time: time.Now().UTC(), TraceParent: tc.String(),
		Origin: status.Origin{Platform: "n8n", WorkflowID: "wf1"}, Data: status.PublishedData{MessageID: status.NewMessageID(), MessageType: "text",
			Chat: status.Chat{JID: status.StatusBroadcastJID}, Timestamp: time.Now().UTC(), TraceID: tc.TraceID}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *testBundle) deliveries(t testing.TB, f webhooks.DeliveryFilter) []*webhooks.Delivery {
	t.Helper()
	ds, err := b.svc.Deliveries(context.Background(), "sales", f)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// allIn reports whether every delivery of the instance is in state s.
func (b *testBundle) allIn(t testing.TB, n int, s webhooks.DeliveryState) bool {
	ds := b.deliveries(t, webhooks.DeliveryFilter{Limit: 1000})
	if len(ds) != n {
		return false
	}
	for _, d := range ds {
		if d.State != s {
			return false
		}
	}
	return true
}

func (b *testBundle) addWebhook(t testing.TB, label, url string, evs ...string) *webhooks.Webhook {
	t.Helper()
	w, created, err := b.svc.Upsert(context.Background(), "sales", webhooks.WebhookInput{Label: label, URL: url, Events: evs, Authorization: "Bearer s3cret"})
	if err != nil || !created || !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("upsert: %+v %v %v", w, created, err)
	}
	return w
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
