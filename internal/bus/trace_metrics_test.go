package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/tracing"
)

func metricValue(t *testing.T, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Default.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "0"
}

// Trace keeps the trigger's trace id for the handler and counts
// redeliveries and dead letters by node id.
func TestTrace_TraceAndMetrics(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub := &stubPublisher{}
	var seen tracing.Context
	h := bus.Chain(func(ctx context.Context, m jetstream.Msg) error {
		seen, _ = tracing.From(ctx)
		return &bus.PermanentError{Code: "node_test_permanent", Message: "no"}
	}, bus.Trace(log), bus.DeadLetter(pub, func(string) string { return "sf.dlq.status.publish.sales" }, 5))

	redelivered := `statusflow_trigger_redeliveries_total{node="status.publish"}`
	dead := `statusflow_trigger_dlq_total{node="status.publish",reason="node_test_permanent"}`
	before := metricValue(t, redelivered)
	err := h(context.Background(), newFakeMsg(2))
	var de *bus.DeadLetteredError
	if !errors.As(err, &de) {
		t.Fatalf("got %v", err)
	}
	if seen.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || seen.SpanID == "00f067aa0ba902b7" {
		t.Fatalf("handler trace %+v", seen)
	}
	if got := metricValue(t, dead); got != "1" {
		t.Fatalf("%s = %s, want 1", dead, got)
	}
	if got := metricValue(t, redelivered); got == before {
		t.Fatalf("%s did not move from %s", redelivered, before)
	}
}
