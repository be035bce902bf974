package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusflow/statusflow/internal/tracing"
)

// Without Setup the silent provider is installed: Start continues the
// caller's trace (keeping its sampled flag) and mints time-ordered trace ids
// for new ones, through OpenTelemetry's span context. This test runs before
// TestStart_Recorded installs an exporter (it is not parallel).
func TestStart_SilentProvider(t *testing.T) {
	if tracing.Recording() {
		t.Fatal("Recording() without an exporter")
	}
	parent, _ := tracing.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx, end := tracing.Start(tracing.With(context.Background(), parent), "step")
	defer end(nil)
	tc, ok := tracing.From(ctx)
	if !ok || tc.TraceID != parent.TraceID || tc.SpanID == parent.SpanID || !tc.Sampled {
		t.Fatalf("child %+v of %+v", tc, parent)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != tc.TraceID || sc.SpanID().String() != tc.SpanID {
		t.Fatalf("From(ctx) = %+v is not the span context %+v", tc, sc)
	}
	before := time.Now().UnixMilli()
	ctx, end2 := tracing.Start(context.Background(), "root")
	defer end2(nil)
	tc, ok = tracing.From(ctx)
	if ms, err := strconv.ParseInt(tc.TraceID[:12], 16, 64); !ok || err != nil || ms < before || ms > time.Now().UnixMilli() {
		t.Fatalf("new trace %+v: not time-ordered", tc)
	}
	unsampled, _ := tracing.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	ctx, end3 := tracing.Start(tracing.With(context.Background(), unsampled), "unsampled")
	defer end3(nil)
	if tc, _ := tracing.From(ctx); tc.Sampled || tc.TraceID != unsampled.TraceID {
		t.Fatalf("child of an unsampled parent %+v", tc)
	}
}

// Inject and Extract carry the trace over NATS headers, whose keys are
// case-sensitive: the header is "traceparent" as written.
func TestHeader_InjectExtract(t *testing.T) {
	ctx, end := tracing.Start(context.Background(), "producer")
	defer end(nil)
	h := tracing.Header{}
	tracing.Inject(ctx, h)
	want, _ := tracing.From(ctx)
	if got := h["traceparent"]; len(got) != 1 || got[0] != want.String() {
		t.Fatalf("header %v, want traceparent %s", h, want)
	}
	got, ok := tracing.From(tracing.Extract(context.Background(), h))
	if !ok || got != want {
		t.Fatalf("extracted %+v, want %+v", got, want)
	}
	if _, ok := tracing.From(tracing.Extract(context.Background(), tracing.Header{"traceparent": {"00-zz"}})); ok {
		t.Fatal("malformed traceparent extracted")
	}
}

func TestStart_Recorded(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(context.Background()) })
	const traceID, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	parent, _ := tracing.Parse("00-" + traceID + "-" + parentSpan + "-01")

	ctx, endOuter := tracing.StartWith(tracing.With(context.Background(), parent), "outer", trace.WithSpanKind(trace.SpanKindServer))
	outer, _ := tracing.From(ctx)
	ictx, endInner := tracing.Start(ctx, "inner")
	inner, _ := tracing.From(ictx)
	endInner(errors.New("boom"))
	// A Context re-stored from a traceparent string (as the core does with
	// Command.TraceParent) keeps the in-process parent.
	again, _ := tracing.Parse(outer.String())
	_, endSibling := tracing.Start(tracing.With(ctx, again), "sibling")
	endSibling(nil)
	_, endRoot := tracing.Start(context.Background(), "root")
	endRoot(nil)
	endOuter(nil)

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.Name] = s
	}
	o, i, sib, root := spans["outer"], spans["inner"], spans["sibling"], spans["root"]
	if o.SpanContext.TraceID().String() != traceID || o.Parent.SpanID().String() != parentSpan || !o.Parent.IsRemote() || o.SpanKind != trace.SpanKindServer {
		t.Fatalf("outer %+v", o)
	}
	if outer.SpanID != o.SpanContext.SpanID().String() || inner.SpanID != i.SpanContext.SpanID().String() {
		t.Fatalf("Context does not name the span: %+v %+v", outer, inner)
	}
	if i.SpanContext.TraceID().String() != traceID || i.Parent.SpanID() != o.SpanContext.SpanID() || i.Parent.IsRemote() {
		t.Fatalf("inner %+v", i)
	}
	if i.Status.Code != codes.Error || i.Status.Description != "boom" || len(i.Events) == 0 {
		t.Fatalf("inner error not recorded: %+v", i.Status)
	}
	if sib.Parent.SpanID() != o.SpanContext.SpanID() || sib.Parent.IsRemote() {
		t.Fatalf("sibling parent %+v", sib.Parent)
	}
	if root.Parent.IsValid() || root.SpanContext.TraceID().String() == traceID {
		t.Fatalf("root %+v", root)
	}
}

func TestSetup_OTLPHTTP(t *testing.T) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type") + " " + strconv.Itoa(len(b))
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{OTLPEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, end := tracing.Start(context.Background(), "exported")
	end(nil)
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if !strings.HasPrefix(req, "POST /v1/traces application/x-protobuf") {
			t.Fatalf("collector got %s", req)
		}
	default:
		t.Fatal("nothing exported on shutdown")
	}
}
