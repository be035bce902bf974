package store_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/tracing"
)

// On PostgreSQL a query made inside a trace is a client span of it (while
// spans are exported); one made outside a trace starts none. (Not
// parallel: it installs an exporter, which is process-global.)
func TestStore_PostgresQuerySpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: spans})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(context.Background()) })
	s := storetest.New(t, store.Postgres)

	if _, err := s.StatusGet(context.Background(), "sales", "untraced"); err != nil && err != store.ErrNotFound {
		t.Fatal(err)
	}
	ctx, end := tracing.Start(context.Background(), "request")
	if _, err := s.StatusGet(ctx, "sales", "traced"); err != nil && err != store.ErrNotFound {
		t.Fatal(err)
	}
	end(nil)
	req, _ := tracing.From(ctx)

	var queries int
	for _, sp := range spans.GetSpans() {
		if sp.Name != "SELECT" {
			continue
		}
		queries++
		if sp.SpanContext.TraceID().String() != req.TraceID || sp.Parent.SpanID().String() != req.SpanID {
			t.Fatalf("query span %s in trace %s under %s, want under the request %+v", sp.Name, sp.SpanContext.TraceID(), sp.Parent.SpanID(), req)
		}
	}
	if queries != 1 {
		t.Fatalf("%d SELECT spans, want 1 (the traced query)", queries)
	}
}
