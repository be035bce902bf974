package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/tracing"
)

var (
	spansOnce sync.Once
	spans     *tracetest.InMemoryExporter
)

// recordSpans installs an in-memory span exporter for the whole test binary
// (the tracer provider is process-global); tests pick their spans by trace id.
func recordSpans(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	spansOnce.Do(func() {
		spans = tracetest.NewInMemoryExporter()
		if _, err := tracing.Setup(context.Background(), tracing.Config{Exporter: spans}); err != nil {
			t.Fatal(err)
		}
	})
	return spans
}

func spansOf(exp *tracetest.InMemoryExporter, traceID string) map[string]sdktrace.ReadOnlySpan {
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range exp.GetSpans().Snapshots() {
		if s.SpanContext().TraceID().String() == traceID {
			out[s.Name()] = s
		}
	}
	return out
}

type cloudEvent struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	TraceParent string         `json:"traceparent"`
	Data        map[string]any `json:"data"`
}

func decodeEvents(t *testing.T, v any) []cloudEvent {
	t.Helper()
	b, _ := json.Marshal(v)
	var out []cloudEvent
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("events: %v in %s", err, b)
	}
	return out
}

func types(evs []cloudEvent) string {
	var ts []string
	for _, e := range evs {
		ts = append(ts, e.Type)
	}
	return strings.Join(ts, ",")
}

// One trace id sent with an HTTP publish comes back in the response, in every
// stored event of the status's story, and in the spans of each pipeline step.
func TestEventsLog_TraceStory(t *testing.T) {
	t.Parallel()
	exp := recordSpans(t)
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)
	if r := a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"label": "default", "enabled": true, "url": receiver.URL, "events": []string{"status.published"}}); r.Code >= 300 {
		t.Fatalf("webhook: %d %s", r.Code, r.Raw)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"

	r := a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "hi", "source": "crm"}, "traceparent", parent)
	if r.Code != 200 {
		t.Fatalf("publish: %d %s", r.Code, r.Raw)
	}
	if r.Data()["traceId"] != traceID || !strings.Contains(r.Header.Get("traceparent"), traceID) {
		t.Fatalf("response trace: %s / %s", r.Header.Get("traceparent"), r.Raw)
	}
	msgID := r.Data()["messageId"].(string)
	// The deletion has a trace of its own.
	a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "x", "font": "comic"})
	if d := a.Do("DELETE", "/api/chat/delete/sales", tok, map[string]any{"messageId": msgID, "deleteForEveryone": true}); d.Code != 200 {
		t.Fatalf("delete: %d %s", d.Code, d.Raw)
	}

	r = a.Do("GET", "/api/events/log/sales?traceId="+traceID, tok, nil)
	if r.Code != 200 {
		t.Fatalf("log: %d %s", r.Code, r.Raw)
	}
	evs := decodeEvents(t, r.Body["events"])
	if got := types(evs); got != "status.accepted,status.published" {
		t.Fatalf("story %q: %s", got, r.Raw)
	}
	for _, e := range evs {
		if !strings.Contains(e.TraceParent, traceID) || e.Data["traceId"] != traceID || e.Data["messageId"] != msgID {
			t.Fatalf("event %+v", e)
		}
	}
	rel := decodeEvents(t, r.Body["related"])
	if types(rel) != "status.deleted" || rel[0].Data["messageId"] != msgID {
		t.Fatalf("related %s", r.Raw)
	}
	var ds []struct {
		EventID   string `json:"eventId"`
		EventType string `json:"eventType"`
		Webhook   string `json:"webhook"`
	}
	b, _ := json.Marshal(r.Body["deliveries"])
	if err := json.Unmarshal(b, &ds); err != nil || len(ds) != 1 || ds[0].EventID != evs[1].ID || ds[0].Webhook != "default" {
		t.Fatalf("deliveries %s", b)
	}

	got := spansOf(exp, traceID)
	for _, name := range []string{"POST /api/message/status/:instance?", "status.publish", "status.validate", "status.send", "status.store", "status.emit"} {
		s, ok := got[name]
		if !ok {
			t.Fatalf("no span %q among %v", name, keys(got))
		}
		if name == "POST /api/message/status/:instance?" && s.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Fatalf("server span parent %s", s.Parent().SpanID())
		}
	}
	if got["status.publish"].Parent().SpanID() != got["POST /api/message/status/:instance?"].SpanContext().SpanID() {
		t.Fatalf("status.publish is not a child of the request span")
	}
}

// A media status's spans cover the media pipeline and the upload, in the caller's trace.
func TestEventsLog_MediaSpans(t *testing.T) {
	t.Parallel()
	exp := recordSpans(t)
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(media.Close)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	r := a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "image", "mediaUrl": media.URL + "/a.png"}, "traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	if r.Code != 200 {
		t.Fatalf("publish: %d %s", r.Code, r.Raw)
	}
	got := spansOf(exp, traceID)
	for _, name := range []string{"status.media.prepare", "status.upload", "status.send"} {
		if s, ok := got[name]; !ok || s.Parent().SpanID() != got["status.publish"].SpanContext().SpanID() {
			t.Fatalf("span %q missing or not under status.publish: %v", name, keys(got))
		}
	}
	for _, name := range []string{"media.fetch", "media.convert"} {
		if s, ok := got[name]; !ok || s.Parent().SpanID() != got["status.media.prepare"].SpanContext().SpanID() {
			t.Fatalf("span %q missing or not under status.media.prepare: %v", name, keys(got))
		}
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestEventsLog_Query(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")
	other := a.CreateInstance("support", "sandbox")
	for i := 0; i < 5; i++ {
		src := "crm"
		if i%2 == 1 {
			src = "bot"
		}
		if r := a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "hi", "source": src}); r.Code != 200 {
			t.Fatalf("publish: %d %s", r.Code, r.Raw)
		}
	}

	t.Run("CursorPaging", func(t *testing.T) {
		t.Parallel()
		var all []cloudEvent
		path := "/api/events/log/sales?type=status.published&limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			r := a.Do("GET", path, tok, nil)
			if r.Code != 200 {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			all = append(all, decodeEvents(t, r.Body["events"])...)
			next, _ := r.Body["nextCursor"].(string)
			if next == "" {
				break
			}
			path = "/api/events/log/sales?type=status.published&limit=2&cursor=" + url.QueryEscape(next)
		}
		seen := map[string]bool{}
		for _, e := range all {
			if e.Type != "status.published" || seen[e.ID] {
				t.Fatalf("event %+v (dup %v)", e, seen[e.ID])
			}
			seen[e.ID] = true
		}
		if len(all) != 5 {
			t.Fatalf("%d events, want 5", len(all))
		}
	})
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		r := a.Do("GET", "/api/events/log/sales?source=bot&type=status.published&platform=http&since=2020-01-01T00:00:00Z", tok, nil)
		if evs := decodeEvents(t, r.Body["events"]); len(evs) != 2 || r.Body["message"] != "2 events found" {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
		r = a.Do("GET", "/api/events/log/sales?since=4102444800", tok, nil) // 2100
		if evs := decodeEvents(t, r.Body["events"]); len(evs) != 0 {
			t.Fatalf("since in the future: %s", r.Raw)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		for path, want := range map[string]string{
			"/api/events/log/sales?cursor=nope":     "Invalid cursor",
			"/api/events/log/sales?limit=0":         "Invalid limit: use a number from 1 to 1000",
			"/api/events/log/sales?limit=5000":      "Invalid limit: use a number from 1 to 1000",
			"/api/events/log/sales?since=yesterday": "Invalid since: use an RFC 3339 time or Unix seconds",
		} {
			if r := a.Do("GET", path, tok, nil); r.Code != 400 || r.ErrorMessage() != want {
				t.Errorf("%s: %d %s", path, r.Code, r.Raw)
			}
		}
		if r := a.Do("GET", "/api/events/log/nobody", apptest.AccountToken, nil); r.Code != 404 || r.ErrorMessage() != "Instance not found" {
			t.Errorf("unknown instance: %d %s", r.Code, r.Raw)
		}
	})
	t.Run("InstanceTokenScoped", func(t *testing.T) {
		t.Parallel()
		if r := a.Do("GET", "/api/events/log/sales", other, nil); r.Code != 403 {
			t.Fatalf("other instance's token: %d %s", r.Code, r.Raw)
		}
		if r := a.Do("GET", "/api/events/log/sales", "", nil); r.Code != 401 {
			t.Fatalf("no token: %d %s", r.Code, r.Raw)
		}
	})
}
