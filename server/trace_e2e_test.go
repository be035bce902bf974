package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/apptest"
)

// TestTrace_EndToEnd follows one trace id sent with an HTTP publish into the
// response, the NATS event (header and body), a webhook delivery (header and
// body) and the event log query.
func TestTrace_EndToEnd(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")

	type delivery struct {
		header http.Header
		body   []byte
	}
	delivered := make(chan delivery, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		delivered <- delivery{r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	if r := a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"label": "trace", "url": receiver.URL, "events": []string{"status.published"}}); r.Code >= 300 {
		t.Fatalf("webhook: %d %s", r.Code, r.Raw)
	}

	nc, err := nats.Connect(a.Bus.ClientURL(), nats.UserInfo(apptest.NATSUser, apptest.NATSPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("statusflow.events.sales.status.published")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	r := a.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"traced","source":"crm"}`,
		"traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	if r.Code != 200 || r.Data()["traceId"] != traceID {
		t.Fatalf("response: %d %s", r.Code, r.Raw)
	}

	type ce struct {
		TraceParent string         `json:"traceparent"`
		Type        string         `json:"type"`
		Data        map[string]any `json:"data"`
	}
	check := func(where, header string, body []byte) {
		t.Helper()
		var ev ce
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("%s body: %v", where, err)
		}
		origin, _ := ev.Data["origin"].(map[string]any) // CloudEvents attributes cannot be objects: origin is in data
		if !strings.Contains(header, traceID) || !strings.Contains(ev.TraceParent, traceID) || ev.Data["traceId"] != traceID ||
			ev.Type != "status.published" || origin["platform"] != "http" || ev.Data["source"] != "crm" {
			t.Fatalf("%s: header traceparent %q, event %+v", where, header, ev)
		}
	}

	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("NATS event: %v", err)
	}
	check("NATS", m.Header.Get("traceparent"), m.Data)

	select {
	case d := <-delivered:
		if d.header.Get("webhook-id") == "" || d.header.Get("webhook-signature") == "" {
			t.Fatalf("unsigned delivery: %v", d.header)
		}
		check("webhook", d.header.Get("traceparent"), d.body)
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook delivery")
	}

	l := a.Do("GET", "/api/events/log/sales?traceId="+traceID, tok, nil)
	if l.Code != 200 || !strings.Contains(string(l.Raw), `"type":"status.published"`) {
		t.Fatalf("event log: %d %s", l.Code, l.Raw)
	}
}
