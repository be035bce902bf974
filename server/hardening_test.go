package server_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/store"
)

var dialects = []store.Dialect{store.SQLite, store.Postgres}

// driverText is what a database or driver error looks like in an answer.
var driverText = []string{"SQLSTATE", "sqlite", "SQLITE", "relation ", "pq:", "pgx", "ERROR:", "syntax error", "no such table"}

func requireNoDriverText(t *testing.T, r *apptest.Response) {
	t.Helper()
	for _, s := range driverText {
		if strings.Contains(string(r.Raw), s) {
			t.Fatalf("answer carries driver text %q: %d %s", s, r.Code, r.Raw)
		}
	}
}

// TestHardening_NULAndInvalidUTF8 sends a NUL character or invalid UTF-8 in
// every kind of string a request carries: body fields, path parameters,
// query filters and stored headers. Each is a 400 at the edge; on
// PostgreSQL they used to be 500s echoing SQLSTATE 22021.
func TestHardening_NULAndInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := apptest.New(t, apptest.Options{Dialect: d})
			tok := a.CreateInstance("sales", "sandbox")
			cases := []struct {
				name, method, path string
				body               any
				headers            []string
			}{
				{"BodyMessage", "POST", "/api/message/status/sales", `{"type":"text","message":"a\u0000b"}`, nil},
				{"BodySource", "POST", "/api/message/status/sales", `{"type":"text","message":"hi","source":"crm\u0000"}`, nil},
				{"BodyInvalidUTF8", "POST", "/api/message/status/sales", "{\"type\":\"text\",\"message\":\"\xff\"}", nil},
				{"ExecuteInput", "POST", "/api/nodes/status.publish/execute", `{"instance":"sales","input":{"type":"text","message":"\u0000"}}`, nil},
				{"ExecuteOrigin", "POST", "/api/nodes/status.publish/execute", `{"instance":"sales","input":{"type":"text","message":"hi"},"origin":{"workflowId":"\u0000"}}`, nil},
				{"ExecuteInstance", "POST", "/api/nodes/status.publish/execute", `{"instance":"sa\u0000les","input":{"type":"text","message":"hi"}}`, nil},
				{"DeleteMessageID", "DELETE", "/api/chat/delete/sales", `{"messageId":"3EB0\u0000"}`, nil},
				{"PathNUL", "POST", "/api/message/status/sa%00les", `{"type":"text","message":"hi"}`, nil},
				{"PathInvalidUTF8", "GET", "/api/events/log/sa%FFles", nil, nil},
				{"QueryNUL", "GET", "/api/events/log/sales?source=" + url.QueryEscape("crm\x00"), nil, nil},
				{"QueryInvalidUTF8", "GET", "/api/events/log/sales?traceId=%C3", nil, nil},
				{"QueryInstanceList", "GET", "/api/instance/list?instanceName=%00", nil, nil},
				{"IdempotencyKeyInvalidUTF8", "POST", "/api/message/status/sales", `{"type":"text","message":"hi"}`, []string{"Idempotency-Key", "k\xff"}},
				{"WebhookLabel", "POST", "/api/events/webhook/sales", `{"label":"a\u0000","url":"http://127.0.0.1:1/x"}`, nil},
				{"InstanceName", "POST", "/api/instance/new", `{"name":"x\u0000","engine":"sandbox"}`, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					use := tok
					if strings.HasPrefix(tc.path, "/api/instance/") || strings.Contains(tc.name, "PathInvalid") || tc.name == "PathNUL" {
						use = acct
					}
					r := a.Do(tc.method, tc.path, use, tc.body, tc.headers...)
					if r.Code != 400 {
						t.Fatalf("code %d, want 400: %s", r.Code, r.Raw)
					}
					requireNoDriverText(t, r)
					if r.Body["traceId"] == "" || r.Body["traceId"] == nil {
						t.Fatalf("no traceId: %s", r.Raw)
					}
				})
			}
			// Nothing above reached the database: the instance still publishes.
			if r := a.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"still fine"}`); r.Code != 200 {
				t.Fatalf("after: %d %s", r.Code, r.Raw)
			}
		})
	}
}

// TestHardening_DatabaseErrorsStayInTheLogs breaks the database under a
// publication (the sandbox's table is gone): the answer is a generic 500
// with the trace id and no driver text, and the status.failed event is
// recorded.
func TestHardening_DatabaseErrorsStayInTheLogs(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			logs := &syncWriter{w: &strings.Builder{}}
			a := apptest.New(t, apptest.Options{Dialect: d, Logs: logs})
			tok := a.CreateInstance("sales", "sandbox")
			db := a.Store.DB
			if _, err := db.Exec(`DROP TABLE sandbox_statuses`); err != nil {
				t.Fatal(err)
			}
			r := a.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"hi"}`)
			if r.Code != 500 || r.ErrorMessage() != "Internal error" {
				t.Fatalf("got %d %s, want 500 Internal error", r.Code, r.Raw)
			}
			requireNoDriverText(t, r)
			traceID, _ := r.Body["traceId"].(string)
			if traceID == "" {
				t.Fatalf("no traceId: %s", r.Raw)
			}
			ev := a.Do("GET", "/api/events/log/sales?traceId="+traceID, tok, nil)
			if !strings.Contains(string(ev.Raw), `"status.failed"`) {
				t.Fatalf("no status.failed event for %s: %s", traceID, ev.Raw)
			}
			requireNoDriverText(t, ev)
			if !strings.Contains(logs.String(), traceID) {
				t.Fatal("the cause was not logged with the trace id")
			}
		})
	}
}

// TestHardening_QueryParams: malformed or out-of-range query parameters are
// 400s, never silently replaced by a default.
func TestHardening_QueryParams(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := apptest.New(t, apptest.Options{Dialect: d})
			tok := a.CreateInstance("sales", "sandbox")
			for _, p := range []string{
				"/api/sandbox/sales/statuses?limit=abc",
				"/api/sandbox/sales/statuses?limit=-5",
				"/api/sandbox/sales/statuses?limit=0",
				"/api/sandbox/sales/statuses?limit=99999999999999999999",
				"/api/events/deliveries/sales?limit=x",
				"/api/events/deliveries/sales?limit=100000",
				"/api/events/deliveries/sales?state=bogus",
				"/api/events/log/sales?since=99999999999999",
				"/api/events/log/sales?since=-1",
				"/api/events/log/sales?since=yesterday",
				"/api/events/log/sales?limit=0",
				"/api/events/log/sales?cursor=%%%",
				"/api/events/log/sales?cursor=" + url.QueryEscape("c2VxOi0x"), // "seq:-1"
			} {
				r := a.Do("GET", p, tok, nil)
				if r.Code != 400 {
					t.Errorf("%s: %d, want 400: %s", p, r.Code, r.Raw)
				}
				requireNoDriverText(t, r)
			}
		})
	}
}

// TestHardening_DeletedInstanceTokenRevoked: a token stops working the
// moment its instance is deleted, also against a new instance of the same
// name (it used to keep working for up to 10 s from the token cache).
func TestHardening_DeletedInstanceTokenRevoked(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := apptest.New(t, apptest.Options{Dialect: d})
			old := a.CreateInstance("sales", "sandbox")
			if r := a.Do("GET", "/api/sandbox/sales/statuses", old, nil); r.Code != 200 { // cached now
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			if r := a.Do("DELETE", "/api/instance/delete/sales", acct, nil); r.Code != 200 {
				t.Fatalf("delete: %d %s", r.Code, r.Raw)
			}
			if r := a.Do("GET", "/api/sandbox/sales/statuses", old, nil); r.Code != 401 {
				t.Fatalf("deleted instance's token: %d, want 401: %s", r.Code, r.Raw)
			}
			fresh := a.CreateInstance("sales", "sandbox")
			if r := a.Do("POST", "/api/message/status/sales", old, `{"type":"text","message":"hi"}`); r.Code != 401 {
				t.Fatalf("old token on the re-created instance: %d, want 401: %s", r.Code, r.Raw)
			}
			if r := a.Do("POST", "/api/message/status/sales", fresh, `{"type":"text","message":"hi"}`); r.Code != 200 {
				t.Fatalf("new token: %d %s", r.Code, r.Raw)
			}
		})
	}
}

// TestHardening_FailedTokensLimitedPerAddress: guessing tokens is throttled
// per client address (each unknown token used to get a fresh bucket and a
// database lookup); the account token keeps working from that address.
func TestHardening_FailedTokensLimitedPerAddress(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	a.CreateInstance("sales", "sandbox")
	got429 := -1
	for i := range 40 {
		r := a.Do("GET", "/api/sandbox/sales/statuses", fmt.Sprintf("guess-%d", i), nil)
		if r.Code == 429 {
			got429 = i
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			break
		}
		if r.Code != 401 {
			t.Fatalf("guess %d: %d %s", i, r.Code, r.Raw)
		}
	}
	if got429 != 20 {
		t.Fatalf("first 429 after %d failed guesses, want 20", got429)
	}
	if r := a.Do("GET", "/api/sandbox/sales/statuses", acct, nil); r.Code != 200 {
		t.Fatalf("account token from the same address: %d %s", r.Code, r.Raw)
	}
}

// TestHardening_ProbesHaveTheirOwnBudget: health and metrics probes without
// a token never use up what other unauthenticated requests of the same
// address (signed inbound hooks, node descriptors) may send, and have a
// budget of their own.
func TestHardening_ProbesHaveTheirOwnBudget(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{Configure: func(c *config.Config) { c.RateLimit = 5 }})
	for i := range 30 {
		p := []string{"/healthz", "/readyz", "/metrics"}[i%3]
		if r := a.Do("GET", p, "", nil); r.Code == 429 {
			t.Fatalf("probe %d got 429 inside its own budget", i)
		}
	}
	for i := range 5 {
		if r := a.Do("GET", "/api/nodes", "", nil); r.Code != 200 {
			t.Fatalf("request %d after the probes: %d %s", i, r.Code, r.Raw)
		}
	}
	if r := a.Do("GET", "/api/nodes", "", nil); r.Code != 429 {
		t.Fatalf("6th unauthenticated request: %d, want 429 (RateLimit 5)", r.Code)
	}
	if r := a.Do("GET", "/healthz", "", nil); r.Code != 200 {
		t.Fatalf("probe after the others' budget ran out: %d", r.Code)
	}
}

// TestHardening_BodyLimits: each route reads at most what its payload can
// need; compressed bodies (which Fiber would inflate without a bound) are
// refused.
func TestHardening_BodyLimits(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")
	big := `{"messageId":"` + strings.Repeat("a", 20<<10) + `"}`
	if r := a.Do("DELETE", "/api/chat/delete/sales", tok, big); r.Code != 413 {
		t.Fatalf("20 KiB delete body: %d, want 413: %s", r.Code, r.Raw)
	}
	create := `{"name":"x","engine":"sandbox","token":"` + strings.Repeat("a", 20<<10) + `"}`
	if r := a.Do("POST", "/api/instance/new", acct, create); r.Code != 413 {
		t.Fatalf("20 KiB create body: %d, want 413: %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"hi"}`, "Content-Encoding", "gzip"); r.Code != 415 {
		t.Fatalf("gzip body: %d, want 415: %s", r.Code, r.Raw)
	}
	wave := `{"type":"audio","mediaUrl":"http://127.0.0.1:1/a.mp3","waveform":[` + strings.Repeat("1,", 400000) + `1]}`
	r := a.Do("POST", "/api/message/status/sales", tok, wave)
	if r.Code != 400 || !strings.Contains(r.ErrorMessage(), "waveform") {
		t.Fatalf("800 KB waveform: %d %s", r.Code, r.Raw)
	}
}

// syncWriter lets the app log from many goroutines into one builder.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// TestHardening_ReadyzWritesToTheDatabase: a database that answers pings
// but cannot write makes /readyz say so (503), without driver text.
func TestHardening_ReadyzWritesToTheDatabase(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := apptest.New(t, apptest.Options{Dialect: d})
			if r := a.Do("GET", "/readyz", "", nil); r.Code != 200 {
				t.Fatalf("before: %d %s", r.Code, r.Raw)
			}
			if _, err := a.Store.DB.Exec(`DROP TABLE settings`); err != nil {
				t.Fatal(err)
			}
			r := a.Do("GET", "/readyz", "", nil)
			if r.Code != 503 || !strings.Contains(string(r.Raw), "database: cannot write") {
				t.Fatalf("a database that cannot write: %d %s", r.Code, r.Raw)
			}
			requireNoDriverText(t, r)
		})
	}
}
