package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/schemas"
	"github.com/statusflow/statusflow/server"
)

// scrape reads GET /metrics into "name{a=\"x\",b=\"y\"}" → value, labels sorted
// by name as the Prometheus text format writes them.
func scrape(t *testing.T, a *apptest.App) map[string]float64 {
	t.Helper()
	r := a.Do("GET", "/metrics", "", nil)
	if r.Code != 200 {
		t.Fatalf("/metrics: %d %s", r.Code, r.Raw)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func series(name string, labels ...string) string {
	var ps []string
	for i := 0; i+1 < len(labels); i += 2 {
		ps = append(ps, labels[i]+`="`+labels[i+1]+`"`)
	}
	sort.Strings(ps)
	if len(ps) == 0 {
		return name
	}
	return name + "{" + strings.Join(ps, ",") + "}"
}

// Not parallel: the metrics are process-wide, so the deltas are measured
// while no other test runs.
func TestMetrics_CountPublicationsAndFailures(t *testing.T) {
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("metrics-probe", "sandbox")
	before := scrape(t, a)

	for i := 0; i < 2; i++ {
		if r := a.Do("POST", "/api/message/status/metrics-probe", tok, map[string]any{"type": "text", "message": "hi"}); r.Code != 200 {
			t.Fatalf("publish: %d %s", r.Code, r.Raw)
		}
	}
	if r := a.Do("POST", "/api/message/status/metrics-probe", "wrong", map[string]any{"type": "text", "message": "hi"}); r.Code != 401 {
		t.Fatalf("bad token: %d", r.Code)
	}
	if r := a.Do("GET", "/no/such/route", "", nil); r.Code != 404 {
		t.Fatalf("unknown route: %d", r.Code)
	}
	if r := a.Do("DELETE", "/api/instance/logout/metrics-probe", tok, nil); r.Code != 200 {
		t.Fatalf("logout: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/api/message/status/metrics-probe", tok, map[string]any{"type": "text", "message": "hi"}); r.Code != 503 {
		t.Fatalf("publish while logged out: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("DELETE", "/api/instance/delete/metrics-probe", apptest.AccountToken, nil); r.Code != 200 {
		t.Fatalf("delete instance: %d %s", r.Code, r.Raw)
	}
	after := scrape(t, a)

	route := "/api/message/status/:instance?"
	for _, c := range []struct {
		series string
		delta  float64
	}{
		{series("statusflow_publications_total", "type", "text", "outcome", "published", "status", ""), 2},
		{series("statusflow_publications_total", "type", "text", "outcome", "failed", "status", "disconnected"), 1},
		{series("statusflow_http_requests_total", "method", "POST", "route", route, "code", "200"), 2},
		{series("statusflow_http_requests_total", "method", "POST", "route", route, "code", "401"), 1},
		{series("statusflow_http_requests_total", "method", "POST", "route", route, "code", "503"), 1},
		{series("statusflow_http_requests_total", "method", "OTHER", "route", "unmatched", "code", "404"), 1},
		{series("statusflow_pipeline_stage_duration_seconds_count", "stage", "send", "outcome", "ok"), 2},
		{series("statusflow_pipeline_stage_duration_seconds_count", "stage", "validate", "outcome", "error"), 1},
		{series("statusflow_events_total", "type", "status.failed"), 1},
		{series("statusflow_instances", "state", "connected"), -1},
		{series("statusflow_instances", "state", "loggedout"), 0}, // logged out, then deleted
	} {
		if d := after[c.series] - before[c.series]; d != c.delta {
			t.Errorf("%s changed by %v, want %v", c.series, d, c.delta)
		}
	}
	for s := range after {
		if strings.Contains(s, "metrics-probe") {
			t.Errorf("raw path or instance name in a label: %s", s)
		}
	}
}

// Not parallel, like the test above. Webhook deliveries are counted by
// outcome, and failures by the receiver's status class.
func TestMetrics_WebhookDeliveries(t *testing.T) {
	a := apptest.New(t, apptest.Options{Configure: func(c *config.Config) { c.RateLimit = 1 << 20 }}) // scrapes in a loop
	tok := a.CreateInstance("metrics-hooks", "sandbox")
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(ok.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(broken.Close)
	for label, url := range map[string]string{"ok": ok.URL, "broken": broken.URL} {
		if r := a.Do("POST", "/api/events/webhook/metrics-hooks", tok, map[string]any{"label": label, "url": url, "events": []string{"status.published"}}); r.Code >= 300 {
			t.Fatalf("webhook %s: %d %s", label, r.Code, r.Raw)
		}
	}
	delivered := series("statusflow_webhook_delivery_attempts_total", "outcome", "delivered")
	failed := series("statusflow_webhook_delivery_failures_total", "reason", "5xx")
	latency := series("statusflow_webhook_delivery_duration_seconds_count", "outcome", "delivered")
	before := scrape(t, a)
	if r := a.Do("POST", "/api/message/status/metrics-hooks", tok, map[string]any{"type": "text", "message": "hi"}); r.Code != 200 {
		t.Fatalf("publish: %d %s", r.Code, r.Raw)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		after := scrape(t, a)
		if after[delivered]-before[delivered] == 1 && after[latency]-before[latency] == 1 && after[failed] > before[failed] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %s %v→%v, %s %v→%v", delivered, before[delivered], after[delivered], failed, before[failed], after[failed])
		}
		time.Sleep(20 * time.Millisecond) // polling a scrape: nothing to wait on
	}
}

func TestReadyz_SaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T, checks map[string]func(context.Context) error) *server.Server {
		t.Helper()
		st := storetest.New(t, store.SQLite)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
		t.Cleanup(func() { mgr.Stop(context.Background()) })
		return server.New(server.Deps{Instances: st, Statuses: st, Sandbox: st, Events: st, Manager: mgr, Validator: schemas.Default(), Log: log, Auth: auth.New("", st), Checks: checks}, server.Config{})
	}
	get := func(t *testing.T, s *server.Server) (int, string) {
		t.Helper()
		resp, err := s.App().Test(httptest.NewRequest("GET", "/readyz", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ok := func(context.Context) error { return nil }

	t.Run("AllReady", func(t *testing.T) {
		t.Parallel()
		code, body := get(t, setup(t, map[string]func(context.Context) error{"database": ok, "nats": ok}))
		if code != 200 || !strings.Contains(body, `"message":"ready"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("FailingChecksInWords", func(t *testing.T) {
		t.Parallel()
		code, body := get(t, setup(t, map[string]func(context.Context) error{
			"database": ok,
			"ffmpeg":   func(context.Context) error { return errors.New("ffmpeg not found in PATH") },
			"nats":     func(context.Context) error { return errors.New("NATS connection closed") },
		}))
		if code != 503 || !strings.Contains(body, "not ready: ffmpeg: ffmpeg not found in PATH; nats: NATS connection closed") {
			t.Fatalf("%d %s", code, body)
		}
	})
}
