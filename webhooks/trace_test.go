package webhooks_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/webhooks"
)

// Each delivery attempt is a client span, a child of the event's
// traceparent, with the receiver's status; the receiver's traceparent
// header names that span. (Not parallel: it installs an exporter, which is
// process-global.)
func TestWorker_DeliverySpan(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: spans})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(context.Background()) })

	_, b := setup(t, storetest.Dialects()[0], nil, nil)
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	w := b.addWebhook(t, "default", rc.URL())
	rc.setSecrets(w.Secret)
	b.emit(t, status.EventStatusPublished)
	waitFor(t, waitLong, "delivered", func() bool { return b.allIn(t, 1, webhooks.StateDelivered) })

	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	ev, _ := tracing.Parse(reqs[0].Event.TraceParent)
	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		if s.Name == "webhook POST" {
			byID[s.SpanContext.SpanID().String()] = s
		}
	}
	for i, r := range reqs {
		tc, _ := tracing.Parse(r.Header.Get("traceparent"))
		s, ok := byID[tc.SpanID]
		if !ok {
			t.Fatalf("request %d: traceparent %q names no webhook span", i, r.Header.Get("traceparent"))
		}
		if s.SpanKind != trace.SpanKindClient || s.SpanContext.TraceID().String() != ev.TraceID || s.Parent.SpanID().String() != ev.SpanID {
			t.Fatalf("request %d: span %+v, want a client span child of %+v", i, s, ev)
		}
		code, want := attrOf(s, "http.response.status_code"), int64(r.Status)
		if code.AsInt64() != want || (s.Status.Code == codes.Error) != (r.Status >= 400) {
			t.Fatalf("request %d: status attribute %v, span status %v; receiver answered %d", i, code, s.Status, r.Status)
		}
	}
}

func attrOf(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return attribute.Value{}
}
