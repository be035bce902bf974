package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/server"
)

func newNodesApp(t *testing.T, d store.Dialect) *apptest.App {
	t.Helper()
	return apptest.New(t, apptest.Options{Dialect: d, Configure: func(c *config.Config) { c.RateLimit = 10000 }})
}

func TestNodes_Describe(t *testing.T) {
	t.Parallel()
	a := newNodesApp(t, store.SQLite)

	t.Run("ListWithoutToken", func(t *testing.T) {
		r := a.Do("GET", "/api/nodes", "", nil)
		if r.Code != 200 {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
		list, _ := r.Body["nodes"].([]any)
		ids := map[string]map[string]any{}
		for _, n := range list {
			m := n.(map[string]any)
			ids[m["id"].(string)] = m
		}
		for _, id := range []string{"status.publish", "status.delete", "status.published", "status.failed", "instance.state"} {
			if ids[id] == nil {
				t.Fatalf("node %s missing from %s", id, r.Raw)
			}
		}
		pub := ids["status.publish"]
		if pub["kind"] != "action" || pub["inputSchema"] != "https://statusflow.dev/schemas/status.publish.input.json" {
			t.Fatalf("publish descriptor: %v", pub)
		}
		if in, _ := pub["input"].(map[string]any); in["$id"] != pub["inputSchema"] {
			t.Fatalf("input schema not inlined: %v", pub["input"])
		}
		if ids["status.failed"]["kind"] != "trigger" || ids["status.failed"]["event"] != "status.failed" {
			t.Fatalf("trigger descriptor: %v", ids["status.failed"])
		}
	})
	t.Run("RenderedLikeTheRenderers", func(t *testing.T) {
		for _, id := range []string{"status.publish", "status.delete", "status.published"} {
			d, _ := a.Catalog.Get(id)
			n8n, _ := nodes.RenderN8n(a.Catalog, d)
			zap, _ := nodes.RenderZapier(a.Catalog, d)
			for format, want := range map[string]any{"n8n": n8n, "zapier": zap} {
				r := a.Do("GET", "/api/nodes/"+id+"?format="+format, "", nil)
				key := "node"
				if format == "zapier" {
					key = "app"
				}
				got, _ := json.Marshal(r.Body[key])
				wantJSON, _ := json.Marshal(want)
				var g, w any
				json.Unmarshal(got, &g)
				json.Unmarshal(wantJSON, &w)
				if r.Code != 200 || fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("%s %s: %d %s", id, format, r.Code, r.Raw)
				}
			}
		}
	})
	t.Run("UnknownFormat", func(t *testing.T) {
		r := a.Do("GET", "/api/nodes/status.publish?format=make", "", nil)
		if r.Code != 400 || r.ErrorMessage() != "Invalid format: use n8n or zapier" {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
	t.Run("UnknownNode", func(t *testing.T) {
		r := a.Do("GET", "/api/nodes/status.nope", "", nil)
		if r.Code != 404 || r.ErrorMessage() != "Node not found" || r.ErrorStatus() != "" {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
}

func TestNodes_Execute(t *testing.T) {
	t.Parallel()
	a := newNodesApp(t, store.SQLite)
	salesTok := a.CreateInstance("sales", "sandbox")
	a.CreateInstance("other", "sandbox")
	a.CreateInstance("offline", "sandbox")
	if r := a.Do("DELETE", "/api/instance/logout/offline", acct, nil); r.Code != 200 {
		t.Fatalf("logout: %d %s", r.Code, r.Raw)
	}

	t.Run("WithOrigin", func(t *testing.T) {
		r := a.Do("POST", "/api/nodes/status.publish/execute", acct, `{"instance":"sales","input":{"type":"text","message":"From n8n"},
			"origin":{"platform":"n8n","workflowId":"wf-7","workflowName":"Promo","executionId":"991","nodeName":"Post status","source":"n8n","extra":{"team":"growth"}}}`)
		if r.Code != 200 || r.Body["success"] != true {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
		out := r.Body["output"].(map[string]any)
		origin, _ := out["origin"].(map[string]any)
		if r.Body["traceId"] == "" || out["traceId"] != r.Body["traceId"] || out["source"] != "n8n" || origin["workflowId"] != "wf-7" || origin["executionId"] != "991" {
			t.Fatalf("output: %s", r.Raw)
		}
		if tp := r.Header.Get("traceparent"); !strings.Contains(tp, r.Body["traceId"].(string)) {
			t.Fatalf("traceparent %q, traceId %v", tp, r.Body["traceId"])
		}
		st, err := a.Store.StatusGet(t.Context(), "sales", out["messageId"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var stored map[string]any
		json.Unmarshal([]byte(st.Origin), &stored)
		if stored["platform"] != "n8n" || stored["workflowName"] != "Promo" || stored["nodeName"] != "Post status" || st.Source != "n8n" {
			t.Fatalf("stored origin %s, source %q", st.Origin, st.Source)
		}
		if extra, _ := stored["extra"].(map[string]any); extra["team"] != "growth" {
			t.Fatalf("extra not kept: %s", st.Origin)
		}
	})
	t.Run("WithoutOrigin", func(t *testing.T) {
		r := a.Do("POST", "/api/nodes/status.publish/execute", salesTok, `{"instance":"sales","input":{"type":"text","message":"plain","source":"crm"}}`)
		if r.Code != 200 {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
		out := r.Body["output"].(map[string]any)
		st, err := a.Store.StatusGet(t.Context(), "sales", out["messageId"].(string))
		if err != nil || st.Source != "crm" || !strings.Contains(st.Origin, `"platform":"http"`) {
			t.Fatalf("stored %+v %v", st, err)
		}
	})
	t.Run("DeleteThroughExecute", func(t *testing.T) {
		r := a.Do("POST", "/api/nodes/status.publish/execute", acct, `{"instance":"sales","input":{"type":"text","message":"short-lived"}}`)
		id := r.Body["output"].(map[string]any)["messageId"].(string)
		r = a.Do("POST", "/api/nodes/status.delete/execute", acct, `{"instance":"sales","input":{"messageId":"`+id+`","deleteForEveryone":true},"origin":{"platform":"zapier"}}`)
		out, _ := r.Body["output"].(map[string]any)
		if r.Code != 200 || out["deleteType"] != "revoke" || out["messageId"] != id {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
	cases := []struct {
		name, node, tok, body string
		code                  int
		status, msg           string
	}{
		{"MissingToken", "status.publish", "", `{"instance":"sales","input":{"type":"text","message":"a"}}`, 401, "", "Missing token"},
		{"InvalidToken", "status.publish", "nope-nope-nope-nope", `{"instance":"sales","input":{"type":"text","message":"a"}}`, 401, "", "Invalid token"},
		{"OtherInstanceToken", "status.publish", "SALES", `{"instance":"other","input":{"type":"text","message":"a"}}`, 403, "", "Instance token does not match this instance"},
		{"NodeNotFound", "status.nope", acct, `{"instance":"sales","input":{}}`, 404, "", "Node not found"},
		{"TriggerNotExecutable", "status.published", acct, `{"instance":"sales","input":{}}`, 400, "", "Node status.published is a trigger: it cannot be executed; subscribe to its status.published events instead"},
		{"InstanceNameRequired", "status.publish", acct, `{"input":{"type":"text","message":"a"}}`, 400, "", "Instance name is required"},
		{"InstanceNameEmpty", "status.publish", acct, `{"instance":"","input":{"type":"text","message":"a"}}`, 400, "", "Instance name is required"},
		{"InvalidBody", "status.publish", acct, `{"instance":`, 400, "", "Invalid request body: unexpected EOF"},
		{"UnknownEnvelopeField", "status.publish", acct, `{"instance":"sales","input":{"type":"text","message":"a"},"extra":1}`, 400, "", "Invalid request body: unknown field 'extra' not allowed"},
		{"BadOrigin", "status.publish", acct, `{"instance":"sales","input":{"type":"text","message":"a"},"origin":{"platform":5}}`, 400, "", "Invalid request body: origin/platform: expected string, but got number"},
		{"TypeRequired", "status.publish", acct, `{"instance":"sales","input":{"message":"a"}}`, 400, "", "Type must be one of: text, image, video, audio"},
		{"MessageRequired", "status.publish", acct, `{"instance":"sales","input":{"type":"text"}}`, 400, "", "Message is required"},
		{"MediaURLRequired", "status.publish", acct, `{"instance":"sales","input":{"type":"audio"}}`, 400, "", "MediaURL is required for type: audio"},
		{"SourceMismatch", "status.publish", acct, `{"instance":"sales","input":{"type":"text","message":"a","source":"crm"},"origin":{"source":"n8n"}}`, 400, "", `Invalid request body: input.source "crm" and origin.source "n8n" disagree; send one, or the same in both`},
		{"InstanceNotFound", "status.publish", acct, `{"instance":"ghost","input":{"type":"text","message":"a"}}`, 404, "", "Instance not found"},
		{"Disconnected", "status.publish", acct, `{"instance":"offline","input":{"type":"text","message":"a"}}`, 503, "disconnected", "Instance is not connected to WhatsApp"},
		{"MessageIDRequired", "status.delete", acct, `{"instance":"sales","input":{}}`, 400, "", "MessageID is required"},
		{"MessageNotFound", "status.delete", acct, `{"instance":"sales","input":{"messageId":"3EB0FFFFFFFFFFFFFFFFFF"}}`, 404, "", "message not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.tok
			if tok == "SALES" {
				tok = salesTok
			}
			r := a.Do("POST", "/api/nodes/"+tc.node+"/execute", tok, tc.body)
			if r.Code != tc.code || r.ErrorMessage() != tc.msg || r.ErrorStatus() != tc.status {
				t.Fatalf("got %d %q %q, want %d %q %q (%s)", r.Code, r.ErrorStatus(), r.ErrorMessage(), tc.code, tc.status, tc.msg, r.Raw)
			}
		})
	}
}

// TestServer_DeleteStatusMessages checks API.md §5's literal messages from the real handler.
func TestServer_DeleteStatusMessages(t *testing.T) {
	t.Parallel()
	a := newNodesApp(t, store.SQLite)
	a.CreateInstance("sales", "sandbox")
	a.CreateInstance("offline", "sandbox")
	publish := func() string {
		r := a.Do("POST", "/api/message/status/sales", acct, `{"type":"text","message":"to delete"}`)
		if r.Code != 200 {
			t.Fatalf("publish: %d %s", r.Code, r.Raw)
		}
		return r.Data()["messageId"].(string)
	}
	if r := a.Do("DELETE", "/api/instance/logout/offline", acct, nil); r.Code != 200 {
		t.Fatalf("logout: %d %s", r.Code, r.Raw)
	}
	cases := []struct {
		name, path, body string
		code             int
		status, msg      string
	}{
		{"InstanceNameRequired", "/api/chat/delete/", `{"messageId":"X"}`, 400, "", "Instance name is required"},
		{"InvalidBody", "/api/chat/delete/sales", `{"messageId":`, 400, "", "Invalid request body: unexpected EOF"},
		{"MessageIDRequired", "/api/chat/delete/sales", `{}`, 400, "", "MessageID is required"},
		{"MessageIDEmpty", "/api/chat/delete/sales", `{"messageId":""}`, 400, "", "MessageID is required"},
		{"InstanceNotFound", "/api/chat/delete/ghost", `{"messageId":"X"}`, 404, "", "Instance not found"},
		{"MessageNotFound", "/api/chat/delete/sales", `{"messageId":"3EB0FFFFFFFFFFFFFFFFFF"}`, 404, "", "message not found"},
		{"Disconnected", "/api/chat/delete/offline", `{"messageId":"X","deleteForEveryone":true}`, 503, "disconnected", "Instance is not connected to WhatsApp"},
		// "Delete for me" is local: offline, it looks the status up (issue 12).
		{"DeleteForMeOffline", "/api/chat/delete/offline", `{"messageId":"X"}`, 404, "", "message not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := a.Do("DELETE", tc.path, acct, tc.body)
			if r.Code != tc.code || r.ErrorMessage() != tc.msg || r.ErrorStatus() != tc.status {
				t.Fatalf("got %d %q %q, want %d %q %q (%s)", r.Code, r.ErrorStatus(), r.ErrorMessage(), tc.code, tc.status, tc.msg, r.Raw)
			}
		})
	}
	t.Run("DeletedForEveryone", func(t *testing.T) {
		id := publish()
		r := a.Do("DELETE", "/api/chat/delete/sales", acct, `{"messageId":"`+id+`","deleteForEveryone":true}`)
		if r.Code != 200 || r.Body["message"] != "Message deleted for everyone" || r.Body["delete_type"] != "revoke" || r.Body["messageId"] != id {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
	t.Run("DeletedForMe", func(t *testing.T) {
		id := publish()
		r := a.Do("DELETE", "/api/chat/delete/sales", acct, `{"messageId":"`+id+`"}`)
		if r.Code != 200 || r.Body["message"] != "Message deleted for me" || r.Body["delete_type"] != "delete_for_me" {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
}

// TestIdempotency_ConcurrentDuplicates: 20 identical requests with one
// Idempotency-Key, at once, publish one status and all answer its messageId.
func TestIdempotency_ConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := newNodesApp(t, d)
			a.CreateInstance("sales", "sandbox")
			a.CreateInstance("offline", "sandbox")

			race := func(t *testing.T, path, key, body string) string {
				const n = 20
				ids := make([]string, n)
				codes := make([]int, n)
				raws := make([]string, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := a.Do("POST", path, acct, body, "Idempotency-Key", key)
						codes[i], raws[i] = r.Code, string(r.Raw)
						if out, ok := r.Body["output"].(map[string]any); ok {
							ids[i], _ = out["messageId"].(string)
						} else {
							ids[i], _ = r.Data()["messageId"].(string)
						}
					}()
				}
				wg.Wait()
				for i := range n {
					if codes[i] != 200 || ids[i] == "" || ids[i] != ids[0] {
						t.Fatalf("request %d: %d %q (first %q): %s", i, codes[i], ids[i], ids[0], raws[i])
					}
				}
				return ids[0]
			}
			count := func(t *testing.T) int {
				n, err := a.Store.SandboxStatusCount(t.Context(), "sales")
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			t.Run("SendStatus", func(t *testing.T) {
				race(t, "/api/message/status/sales", "send-1", `{"type":"text","message":"once"}`)
				if n := count(t); n != 1 {
					t.Fatalf("%d publications, want 1", n)
				}
			})
			t.Run("Execute", func(t *testing.T) {
				id := race(t, "/api/nodes/status.publish/execute", "exec-1", `{"instance":"sales","input":{"type":"text","message":"once more"},"origin":{"platform":"n8n","executionId":"1"}}`)
				if n := count(t); n != 2 {
					t.Fatalf("%d publications, want 2", n)
				}
				// A retry from a new execution (new origin) is the same request.
				r := a.Do("POST", "/api/nodes/status.publish/execute", acct, `{"instance":"sales","input":{"type":"text","message":"once more"},"origin":{"platform":"n8n","executionId":"2"}}`, "Idempotency-Key", "exec-1")
				if r.Code != 200 || r.Body["output"].(map[string]any)["messageId"] != id {
					t.Fatalf("retry: %d %s", r.Code, r.Raw)
				}
			})
			t.Run("ReusedKeyConflicts", func(t *testing.T) {
				r := a.Do("POST", "/api/message/status/sales", acct, `{"type":"text","message":"something else"}`, "Idempotency-Key", "send-1")
				if r.Code != 409 || r.ErrorStatus() != "idempotency_key_reused" || r.ErrorMessage() != "Idempotency-Key was already used with a different request" {
					t.Fatalf("%d %s", r.Code, r.Raw)
				}
				if n := count(t); n != 2 {
					t.Fatalf("%d publications, want 2", n)
				}
			})
			t.Run("SameKeyOtherInstance", func(t *testing.T) {
				a.CreateInstance("second", "sandbox")
				r := a.Do("POST", "/api/message/status/second", acct, `{"type":"text","message":"once"}`, "Idempotency-Key", "send-1")
				if r.Code != 200 {
					t.Fatalf("%d %s", r.Code, r.Raw)
				}
			})
			t.Run("FailedAttemptReleasesKey", func(t *testing.T) {
				if r := a.Do("DELETE", "/api/instance/logout/offline", acct, nil); r.Code != 200 {
					t.Fatalf("logout: %d %s", r.Code, r.Raw)
				}
				body := `{"type":"text","message":"retry me"}`
				if r := a.Do("POST", "/api/message/status/offline", acct, body, "Idempotency-Key", "retry-1"); r.Code != 503 {
					t.Fatalf("first attempt: %d %s", r.Code, r.Raw)
				}
				if r := a.Do("POST", "/api/instance/reconnect/offline", acct, nil); r.Code != 200 {
					t.Fatalf("reconnect: %d %s", r.Code, r.Raw)
				}
				if r := a.Do("POST", "/api/message/status/offline", acct, body, "Idempotency-Key", "retry-1"); r.Code != 200 {
					t.Fatalf("retry: %d %s", r.Code, r.Raw)
				}
			})
		})
	}
}

type recordingEnqueuer struct {
	mu   sync.Mutex
	got  []nodes.ExecuteRequest
	node []string
}

func (e *recordingEnqueuer) Enqueue(_ context.Context, nodeID string, req nodes.ExecuteRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got, e.node = append(e.got, req), append(e.node, nodeID)
	return nil
}

func TestNodes_ExecuteAsync(t *testing.T) {
	t.Parallel()
	a := newNodesApp(t, store.SQLite)
	a.CreateInstance("sales", "sandbox")
	enq := &recordingEnqueuer{}
	s := server.New(server.Deps{Instances: a.Store, Statuses: a.Store, Sandbox: a.Store, Events: a.Store, Manager: a.Manager, Service: a.Service, Validator: a.Server.Validator(), Log: slog.New(slog.DiscardHandler),
		Auth: auth.New(auth.HashToken(acct), a.Store), Catalog: a.Catalog, Enqueuer: enq}, server.Config{})
	do := func(body string, headers ...string) (int, map[string]any, http.Header) {
		req := httptest.NewRequest("POST", "/api/nodes/status.publish/execute", strings.NewReader(body))
		req.Header.Set("token", acct)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := s.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}

	t.Run("Accepted", func(t *testing.T) {
		code, body, h := do(`{"instance":"sales","input":{"type":"text","message":"later"},"origin":{"platform":"n8n","executionId":"5"}}`,
			"Prefer", "respond-async", "Idempotency-Key", "async-1")
		out, _ := body["output"].(map[string]any)
		if code != 202 || h.Get("Preference-Applied") != "respond-async" || out["messageId"] == "" || body["traceId"] == "" {
			t.Fatalf("%d %v", code, body)
		}
		enq.mu.Lock()
		defer enq.mu.Unlock()
		if len(enq.got) != 1 || enq.node[0] != "status.publish" {
			t.Fatalf("enqueued %v", enq.got)
		}
		got := enq.got[0]
		if got.MessageID != out["messageId"] || got.IdempotencyKey != "async-1" || got.Origin.ExecutionID != "5" || !strings.Contains(got.TraceParent, body["traceId"].(string)) {
			t.Fatalf("request %+v", got)
		}
	})
	t.Run("InvalidInputNotQueued", func(t *testing.T) {
		code, body, _ := do(`{"instance":"sales","input":{"type":"text"}}`, "Prefer", "respond-async")
		if code != 400 || body["error"].(map[string]any)["message"] != "Message is required" {
			t.Fatalf("%d %v", code, body)
		}
	})
	t.Run("WithoutPreferRunsNow", func(t *testing.T) {
		code, body, _ := do(`{"instance":"sales","input":{"type":"text","message":"now"}}`)
		if code != 200 || body["output"] == nil {
			t.Fatalf("%d %v", code, body)
		}
	})
}
