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

// TestSchedule_EndToEnd publishes later in real time through HTTP: 202 with
// the message id fixed up front, listed, published at its second, revoked
// when expireAfter passes; one trace throughout.
func TestSchedule_EndToEnd(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")

	at := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	r := a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "later", "publishAt": at.Format(time.RFC3339Nano), "expireAfter": "2s"})
	if r.Code != 202 || r.Body["status"] != "scheduled" || r.Data()["scheduleId"] == nil || r.Data()["scheduled"] != true {
		t.Fatalf("schedule: %d %s", r.Code, r.Raw)
	}
	id, sched, trace := r.Data()["messageId"].(string), r.Data()["scheduleId"].(string), r.Data()["traceId"].(string)

	l := a.Do("GET", "/api/schedule/sales", tok, nil)
	list, _ := l.Data()["schedules"].([]any)
	if l.Code != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != sched || list[0].(map[string]any)["messageId"] != id {
		t.Fatalf("list: %d %s", l.Code, l.Raw)
	}
	if r := a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "x", "publishAt": "tomorrow"}); r.Code != 400 ||
		r.ErrorMessage() != "Invalid request body: publishAt must be an RFC 3339 date-time" {
		t.Fatalf("bad publishAt: %d %s", r.Code, r.Raw)
	}

	published := waitFor(t, 10*time.Second, func() bool {
		s := a.Do("GET", "/api/sandbox/sales/statuses", tok, nil)
		st, _ := s.Body["statuses"].([]any)
		return len(st) == 1 && st[0].(map[string]any)["messageId"] == id
	})
	if late := published.Sub(at); late > 1500*time.Millisecond || late < -100*time.Millisecond {
		t.Logf("published %v after its time (polling every 50 ms)", late)
	}
	waitFor(t, 10*time.Second, func() bool {
		s := a.Do("GET", "/api/sandbox/sales/statuses", tok, nil)
		st, _ := s.Body["statuses"].([]any)
		return len(st) == 1 && st[0].(map[string]any)["revoked"] == true
	})
	var got string
	var ev *apptest.Response
	// status.deleted commits just after the sandbox records the revoke.
	waitFor(t, 10*time.Second, func() bool {
		ev = a.Do("GET", "/api/events/log/sales?traceId="+trace, tok, nil)
		var types []string
		evs, _ := ev.Body["events"].([]any)
		for _, e := range evs {
			types = append(types, e.(map[string]any)["type"].(string))
		}
		got = strings.Join(types, ",")
		return strings.HasSuffix(got, "status.deleted")
	})
	if got != "status.scheduled,status.accepted,status.published,status.scheduled,status.deleted" {
		t.Fatalf("trace %s: %s (%s)", trace, got, ev.Raw)
	}

	// Cancel: a second schedule, cancelled; then it is not pending any more.
	r = a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "never", "publishAt": time.Now().Add(time.Hour).Format(time.RFC3339)})
	sched2 := r.Data()["scheduleId"].(string)
	if c := a.Do("DELETE", "/api/schedule/sales/"+sched2, tok, nil); c.Code != 200 || c.Data()["scheduleId"] != sched2 {
		t.Fatalf("cancel: %d %s", c.Code, c.Raw)
	}
	if c := a.Do("DELETE", "/api/schedule/sales/"+sched2, tok, nil); c.Code != 409 || c.ErrorMessage() != "Schedule is already cancelled" {
		t.Fatalf("cancel again: %d %s", c.Code, c.Raw)
	}
	if c := a.Do("DELETE", "/api/schedule/sales/nope", tok, nil); c.Code != 404 || c.ErrorMessage() != "Schedule not found" {
		t.Fatalf("cancel unknown: %d %s", c.Code, c.Raw)
	}
}

// TestViews_EndToEnd simulates viewers on a sandbox status and reads them
// back over HTTP, NATS and a webhook.
func TestViews_EndToEnd(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")
	hooked := make(chan []byte, 8)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooked <- b
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	if r := a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"label": "views", "url": receiver.URL, "events": []string{"status.viewed"}}); r.Code >= 300 {
		t.Fatalf("webhook: %d %s", r.Code, r.Raw)
	}
	nc, err := nats.Connect(a.Bus.ClientURL(), nats.UserInfo(apptest.NATSUser, apptest.NATSPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("statusflow.events.sales.status.viewed")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	r := a.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"look"}`)
	id := r.Data()["messageId"].(string)
	if v := a.Do("POST", "/api/sandbox/sales/views", tok, map[string]any{"messageId": id, "viewers": []string{"5511999990001@s.whatsapp.net"}, "count": 2}); v.Code != 200 || v.Data()["count"] != float64(3) {
		t.Fatalf("simulate: %d %s", v.Code, v.Raw)
	}
	a.Do("POST", "/api/sandbox/sales/views", tok, map[string]any{"messageId": id, "viewers": []string{"5511999990001@s.whatsapp.net"}})
	v := a.Do("GET", "/api/status/views/sales?messageId="+id+"&limit=2", tok, nil)
	viewers, _ := v.Data()["viewers"].([]any)
	if v.Code != 200 || v.Data()["count"] != float64(3) || len(viewers) != 2 || v.Data()["nextCursor"] == nil {
		t.Fatalf("views: %d %s", v.Code, v.Raw)
	}
	v2 := a.Do("GET", "/api/status/views/sales?messageId="+id+"&limit=2&cursor="+v.Data()["nextCursor"].(string), tok, nil)
	if rest, _ := v2.Data()["viewers"].([]any); len(rest) != 1 {
		t.Fatalf("page 2: %s", v2.Raw)
	}
	if v := a.Do("GET", "/api/status/views/sales?messageId=3EB0NOPE", tok, nil); v.Code != 404 {
		t.Fatalf("unknown: %d %s", v.Code, v.Raw)
	}
	for i := 0; i < 3; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("NATS event %d: %v", i, err)
		}
		var ce struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		json.Unmarshal(m.Data, &ce)
		if ce.Type != "status.viewed" || ce.Data["messageId"] != id || ce.Data["views"] != float64(i+1) {
			t.Fatalf("NATS event %d: %s", i, m.Data)
		}
	}
	if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a repeated viewer made another event: %s", m.Data)
	}
	select {
	case b := <-hooked:
		if !strings.Contains(string(b), `"status.viewed"`) {
			t.Fatalf("webhook body %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
	if m := a.Do("GET", "/metrics", "", nil); !strings.Contains(string(m.Raw), `statusflow_status_views_total{kind="read",outcome="recorded"}`) {
		t.Fatal("/metrics has no view counts")
	}
}

// waitFor polls cond every 50 ms until it holds and returns when it did.
func waitFor(t *testing.T, d time.Duration, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met in time")
	return time.Time{}
}
