package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics_Helpers(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) *metrics.Metrics { t.Helper(); return metrics.New() }

	t.Run("InstancesByState", func(t *testing.T) {
		t.Parallel()
		m := setup(t)
		out := scrape(t, m)
		for _, s := range metrics.ConnectionStates {
			if !strings.Contains(out, `statusflow_instances{state="`+s+`"} 0`) {
				t.Fatalf("state %s not exported at zero:\n%s", s, out)
			}
		}
		m.InstanceState("a", "connected")
		m.InstanceState("b", "connected")
		m.InstanceState("b", "disconnected")
		m.InstanceState("c", "connecting")
		m.InstanceRemoved("c")
		out = scrape(t, m)
		for _, want := range []string{`statusflow_instances{state="connected"} 1`, `statusflow_instances{state="disconnected"} 1`, `statusflow_instances{state="connecting"} 0`} {
			if !strings.Contains(out, want) {
				t.Fatalf("missing %s:\n%s", want, out)
			}
		}
	})
	t.Run("Counters", func(t *testing.T) {
		t.Parallel()
		m := setup(t)
		m.Publication("image", "")
		m.Publication("image", "media_download_failed")
		m.Deletion("revoke", "")
		m.HTTPRequest("POST", "/api/message/status/:instance?", 200, time.Millisecond)
		m.Stage("send", true, time.Millisecond)
		m.Event("status.published")
		m.TriggerRedelivered("status.publish")
		m.TriggerDeadLettered("status.publish", "permanent")
		m.WebhookAttempt("retryable", 20*time.Millisecond)
		m.WebhookFailure("5xx")
		out := scrape(t, m)
		for _, want := range []string{
			`statusflow_publications_total{outcome="published",status="",type="image"} 1`,
			`statusflow_publications_total{outcome="failed",status="media_download_failed",type="image"} 1`,
			`statusflow_deletions_total{delete_type="revoke",outcome="ok",status=""} 1`,
			`statusflow_http_requests_total{code="200",method="POST",route="/api/message/status/:instance?"} 1`,
			`statusflow_pipeline_stage_duration_seconds_count{outcome="error",stage="send"} 1`,
			`statusflow_events_total{type="status.published"} 1`,
			`statusflow_trigger_redeliveries_total{node="status.publish"} 1`,
			`statusflow_trigger_dlq_total{node="status.publish",reason="permanent"} 1`,
			`statusflow_webhook_delivery_attempts_total{outcome="retryable"} 1`,
			`statusflow_webhook_delivery_duration_seconds_count{outcome="retryable"} 1`,
			`statusflow_webhook_delivery_failures_total{reason="5xx"} 1`,
			`go_goroutines`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %s", want)
			}
		}
	})
}
