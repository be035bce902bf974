package webhooks_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

func fastApp(t *testing.T, d store.Dialect, configure func(*config.Config)) *apptest.App {
	t.Helper()
	return apptest.New(t, apptest.Options{Dialect: d, Configure: func(c *config.Config) {
		c.WebhookRetryBase, c.WebhookRetryMax, c.WebhookPollInterval, c.WebhookMaxAttempts = 5*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond, 10
		if configure != nil {
			configure(c)
		}
	}})
}

// m digs into decoded JSON: m(body, "webhook", "secret").
func m(v any, path ...string) any {
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	return v
}

func TestAPI_Webhooks(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := fastApp(t, d, nil)
			tok := a.CreateInstance("sales", "sandbox")
			other := a.CreateInstance("support", "sandbox")
			rc := newReceiver(t, nil)

			r := a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"url": rc.URL(), "events": []string{"status.published"}, "authorization": "Bearer xyz"})
			secret, _ := m(r.Body, "webhook", "secret").(string)
			if r.Code != 201 || !strings.HasPrefix(secret, "whsec_") || m(r.Body, "webhook", "label") != "default" || m(r.Body, "webhook", "hasAuthorization") != true {
				t.Fatalf("create: %d %s", r.Code, r.Raw)
			}
			rc.setSecrets(secret)
			r = a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"label": "default", "url": rc.URL(), "events": []string{"status.published"}, "authorization": "Bearer xyz"})
			if r.Code != 200 || m(r.Body, "webhook", "secret") != nil {
				t.Fatalf("update: %d %s", r.Code, r.Raw)
			}
			for _, c := range []struct{ body, want string }{
				{`{}`, "Invalid request body: url is required"},
				{`{"url":"ftp://x"}`, "Invalid request body: url must be an http:// or https:// URL"},
				{`{"url":"http://x","events":["status.sent"]}`, "Invalid request body: events must hold event types: *, status.accepted, status.published, status.failed, status.deleted, instance.state, status.viewed, status.scheduled, status.cancelled, instance.owner"},
				{`{"url":"http://x","label":"a b"}`, "Invalid request body: label must be 1-64 letters, digits, _, . or - (starting with a letter or digit)"},
				{`[]`, "Invalid request body: expected a JSON object"},
			} {
				if r := a.Do("POST", "/api/events/webhook/sales", tok, c.body); r.Code != 400 || r.ErrorMessage() != c.want {
					t.Errorf("%s: %d %q", c.body, r.Code, r.ErrorMessage())
				}
			}
			if r := a.Do("POST", "/api/events/webhook/sales", other, map[string]any{"url": rc.URL()}); r.Code != 403 {
				t.Fatalf("other instance's token: %d", r.Code)
			}
			if r := a.Do("GET", "/api/events/getWebhook/nope", apptest.AccountToken, nil); r.Code != 404 || r.ErrorMessage() != "Instance not found" {
				t.Fatalf("unknown instance: %d %s", r.Code, r.Raw)
			}
			r = a.Do("GET", "/api/events/getWebhook/sales", tok, nil)
			if ws, _ := r.Body["webhooks"].([]any); r.Code != 200 || len(ws) != 1 || strings.Contains(string(r.Raw), secret) || strings.Contains(string(r.Raw), "xyz") {
				t.Fatalf("list: %d %s", r.Code, r.Raw)
			}

			// Publish: the status.published event reaches the receiver, signed.
			r = a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "hello", "source": "crm"})
			if r.Code != 200 {
				t.Fatalf("publish: %d %s", r.Code, r.Raw)
			}
			msgID := r.Data()["messageId"]
			waitFor(t, waitLong, "delivery", func() bool { return len(rc.delivered()) == 1 })
			got := rc.delivered()[0]
			var data map[string]any
			json.Unmarshal(got.Event.Data, &data)
			if got.Event.Type != "status.published" || data["messageId"] != msgID || got.Header.Get("Authorization") != "Bearer xyz" {
				t.Fatalf("delivery %+v %v", got.Event, data)
			}
			var ds []any
			waitFor(t, waitLong, "delivered state", func() bool {
				r = a.Do("GET", "/api/events/deliveries/sales?state=delivered&webhook=default&event=status.published", tok, nil)
				ds, _ = r.Body["deliveries"].([]any)
				return len(ds) == 1
			})
			id := m(ds[0], "id").(string)
			if id != got.ID || m(ds[0], "attempts").([]any)[0].(map[string]any)["statusCode"] != 200.0 {
				t.Fatalf("deliveries: %s", r.Raw)
			}
			if r := a.Do("GET", "/api/events/deliveries/sales?state=bogus", tok, nil); r.Code != 400 {
				t.Fatalf("bad state: %d %s", r.Code, r.Raw)
			}

			// Replay: same webhook-id again.
			if r := a.Do("POST", "/api/events/deliveries/sales/"+id+"/replay", tok, nil); r.Code != 200 {
				t.Fatalf("replay: %d %s", r.Code, r.Raw)
			}
			waitFor(t, waitLong, "replay", func() bool { return len(rc.delivered()) == 2 })
			if rc.delivered()[1].ID != id {
				t.Fatalf("replayed with id %s, want %s", rc.delivered()[1].ID, id)
			}
			if r := a.Do("POST", "/api/events/deliveries/sales/msg_nope/replay", tok, nil); r.Code != 404 || r.ErrorMessage() != "Delivery not found" {
				t.Fatalf("replay unknown: %d %s", r.Code, r.Raw)
			}

			// Rotate: both secrets sign during the grace period.
			r = a.Do("POST", "/api/events/webhook/sales/default/rotate", tok, nil)
			newSecret, _ := m(r.Body, "webhook", "secret").(string)
			if r.Code != 200 || newSecret == "" || newSecret == secret || m(r.Body, "webhook", "previousSecretValidUntil") == nil {
				t.Fatalf("rotate: %d %s", r.Code, r.Raw)
			}
			rc.setSecrets(secret, newSecret)
			a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "after rotation"})
			waitFor(t, waitLong, "delivery after rotation", func() bool { return len(rc.delivered()) == 3 })

			if r := a.Do("DELETE", "/api/events/webhook/sales/default", tok, nil); r.Code != 200 {
				t.Fatalf("delete: %d %s", r.Code, r.Raw)
			}
			if r := a.Do("DELETE", "/api/events/webhook/sales/default", tok, nil); r.Code != 404 || r.ErrorMessage() != "Webhook not found" {
				t.Fatalf("delete again: %d %s", r.Code, r.Raw)
			}
			for _, q := range rc.requests() {
				if q.VerifyErr != nil {
					t.Fatalf("a delivery did not verify: %v", q.VerifyErr)
				}
			}
		})
	}
}

func TestAPI_OpenAPIListsWebhookRoutes(t *testing.T) {
	t.Parallel()
	a := fastApp(t, store.SQLite, nil)
	r := a.Do("GET", "/openapi.json", "", nil)
	for _, p := range []string{"/api/events/webhook/", "/api/events/getWebhook/", "/api/events/deliveries/", "/api/events/inbound/", "/hooks/in/", "webhook.config.input.json"} {
		if r.Code != 200 || !strings.Contains(string(r.Raw), p) {
			t.Errorf("openapi.json (%d) lacks %s", r.Code, p)
		}
	}
}

func TestAPI_PrivateWebhookURLRefused(t *testing.T) {
	t.Parallel()
	a := fastApp(t, store.SQLite, func(c *config.Config) { c.WebhookAllowPrivate = false })
	tok := a.CreateInstance("sales", "sandbox")
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://169.254.169.254/", "http://[::1]:9/", "http://192.168.1.10/"} {
		r := a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"url": u})
		if r.Code != 400 || !strings.Contains(r.ErrorMessage(), "address is not allowed") {
			t.Errorf("%s: %d %s", u, r.Code, r.Raw)
		}
	}
}

func TestAPI_InboundHooks(t *testing.T) {
	t.Parallel()
	a := fastApp(t, store.SQLite, nil)
	tok := a.CreateInstance("sales", "sandbox")
	rc := newReceiver(t, nil)
	r := a.Do("POST", "/api/events/webhook/sales", tok, map[string]any{"url": rc.URL(), "events": []string{"status.published"}})
	rc.setSecrets(m(r.Body, "webhook", "secret").(string))

	r = a.Do("POST", "/api/events/inbound/sales", tok, "")
	hookID, _ := m(r.Body, "hook", "id").(string)
	secret, _ := m(r.Body, "hook", "secret").(string)
	url, _ := m(r.Body, "hook", "url").(string)
	if r.Code != 201 || hookID == "" || !strings.HasPrefix(secret, "whsec_") || !strings.HasSuffix(url, "/hooks/in/"+hookID) || m(r.Body, "hook", "node") != "status.publish" {
		t.Fatalf("create: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/api/events/inbound/sales", tok, `{"node":"Bad Node"}`); r.Code != 400 {
		t.Fatalf("bad node: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/api/events/inbound/sales", tok, `{"node":"status.published"}`); r.Code != 400 {
		t.Fatalf("trigger node: %d %s", r.Code, r.Raw)
	}
	path := "/hooks/in/" + hookID
	post := func(body []byte, h http.Header) *apptest.Response {
		var hs []string
		for k := range h {
			hs = append(hs, k, h.Get(k))
		}
		return a.Do("POST", path, "", body, hs...)
	}
	body := []byte(`{"type":"text","message":"from the CRM","source":"crm"}`)

	// Good signature: the status is published with origin platform webhook.
	r = post(body, signed(t, secret, "msg_in_1", time.Now(), body))
	if r.Code != 200 || m(r.Body, "output", "messageId") == nil || r.Body["traceId"] == "" {
		t.Fatalf("good: %d %s", r.Code, r.Raw)
	}
	waitFor(t, waitLong, "outbound event", func() bool { return len(rc.delivered()) == 1 })
	ev := rc.delivered()[0].Event
	var extra map[string]string
	json.Unmarshal(ev.Origin.Extra, &extra)
	if ev.Origin.Platform != "webhook" || extra["hookId"] != hookID || extra["webhookId"] != "msg_in_1" {
		t.Fatalf("event origin %+v", ev.Origin)
	}
	if s := a.Do("GET", "/api/sandbox/sales/statuses", tok, nil); !strings.Contains(string(s.Raw), fmt.Sprint(m(r.Body, "output", "messageId"))) {
		t.Fatalf("sandbox: %s", s.Raw)
	}

	// Bad signature, old timestamp, replayed id, missing headers.
	if r := post(body, signed(t, "whsec_"+strings.Repeat("A", 43)+"=", "msg_in_2", time.Now(), body)); r.Code != 401 || r.ErrorMessage() != "Invalid webhook signature" {
		t.Fatalf("bad signature: %d %s", r.Code, r.Raw)
	}
	if r := post(body, signed(t, secret, "msg_in_3", time.Now().Add(-10*time.Minute), body)); r.Code != 401 || !strings.Contains(r.ErrorMessage(), "timestamp") {
		t.Fatalf("old timestamp: %d %s", r.Code, r.Raw)
	}
	if r := post(body, signed(t, secret, "msg_in_1", time.Now(), body)); r.Code != 409 || !strings.Contains(r.ErrorMessage(), "replayed") {
		t.Fatalf("replayed id: %d %s", r.Code, r.Raw)
	}
	if r := post(body, http.Header{}); r.Code != 401 {
		t.Fatalf("no headers: %d %s", r.Code, r.Raw)
	}
	// A signed but invalid input gets the node's validation message.
	bad := []byte(`{"type":"text"}`)
	if r := post(bad, signed(t, secret, "msg_in_4", time.Now(), bad)); r.Code != 400 || r.ErrorMessage() != "Message is required" {
		t.Fatalf("invalid input: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/hooks/in/ih_nope", "", body); r.Code != 404 {
		t.Fatalf("unknown hook: %d %s", r.Code, r.Raw)
	}

	r = a.Do("GET", "/api/events/inbound/sales", tok, nil)
	if hs, _ := r.Body["hooks"].([]any); r.Code != 200 || len(hs) != 1 || strings.Contains(string(r.Raw), secret) {
		t.Fatalf("list: %d %s", r.Code, r.Raw)
	}
	r = a.Do("POST", "/api/events/inbound/sales/"+hookID+"/rotate", tok, nil)
	if ns, _ := m(r.Body, "hook", "secret").(string); r.Code != 200 || ns == secret || ns == "" {
		t.Fatalf("rotate: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("DELETE", "/api/events/inbound/sales/"+hookID, tok, nil); r.Code != 200 {
		t.Fatalf("delete: %d %s", r.Code, r.Raw)
	}
	if r := post(body, signed(t, secret, "msg_in_5", time.Now(), body)); r.Code != 404 {
		t.Fatalf("after delete: %d %s", r.Code, r.Raw)
	}
}
