package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/store"
)

const acct = apptest.AccountToken

func TestServer_AuthMatrix(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	salesTok := a.CreateInstance("sales", "sandbox")
	a.CreateInstance("support", "sandbox")
	text := map[string]any{"type": "text", "message": "hi"}

	cases := []struct {
		name, method, path, token string
		headers                   []string
		wantCode                  int
		wantMsg                   string
	}{
		{"NoToken", "POST", "/api/message/status/sales", "", nil, 401, "Missing token"},
		{"BadToken", "POST", "/api/message/status/sales", "nope", nil, 401, "Invalid token"},
		{"AccountToken", "POST", "/api/message/status/sales", acct, nil, 200, "Status sent successfully"},
		{"OwnInstanceToken", "POST", "/api/message/status/sales", salesTok, nil, 200, "Status sent successfully"},
		{"OtherInstanceToken", "POST", "/api/message/status/support", salesTok, nil, 403, "Instance token does not match this instance"},
		{"BearerHeader", "POST", "/api/message/status/sales", "", []string{"Authorization", "Bearer " + salesTok}, 200, "Status sent successfully"},
		{"QueryToken", "POST", "/api/message/status/sales?token=" + salesTok, "", nil, 200, "Status sent successfully"},
		{"HeaderBeatsBearer", "POST", "/api/message/status/sales", "nope", []string{"Authorization", "Bearer " + acct}, 401, "Invalid token"},
		{"AccountOnlyCreate", "POST", "/api/instance/new", salesTok, nil, 401, "Invalid token"},
		{"AccountOnlyDelete", "DELETE", "/api/instance/delete/sales", salesTok, nil, 401, "Invalid token"},
		{"InstanceTokenConnectsOwn", "GET", "/api/instance/connect/sales", salesTok, nil, 200, "Instance already connected"},
		{"InstanceTokenConnectOther", "GET", "/api/instance/connect/support", salesTok, nil, 403, "Instance token does not match this instance"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any = text
			if tc.path == "/api/instance/new" {
				body = map[string]any{"name": "x1", "engine": "sandbox"}
			}
			r := a.Do(tc.method, tc.path, tc.token, body, tc.headers...)
			if r.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", r.Code, tc.wantCode, r.Raw)
			}
			got := r.ErrorMessage()
			if r.Code < 300 {
				got, _ = r.Body["message"].(string)
			}
			if got != tc.wantMsg {
				t.Fatalf("message %q, want %q", got, tc.wantMsg)
			}
			if r.Code >= 400 && (r.Body["success"] != false || r.Body["traceId"] == "") {
				t.Fatalf("not an error envelope: %s", r.Raw)
			}
		})
	}

	t.Run("InstanceTokenListsOnlyItsOwn", func(t *testing.T) {
		r := a.Do("GET", "/api/instance/list", salesTok, nil)
		if r.Code != 200 || r.Body["message"] != "1 Instances found" {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
		r = a.Do("GET", "/api/instance/list?instanceName=sales,support", acct, nil)
		if r.Body["message"] != "2 Instances found" {
			t.Fatalf("%s", r.Raw)
		}
	})
}

func TestServer_RateLimit(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{Configure: func(c *config.Config) { c.RateLimit = 5 }})
	var last *apptest.Response
	for i := 0; i < 5; i++ {
		last = a.Do("GET", "/api/instance/list", acct, nil)
		if last.Code != 200 {
			t.Fatalf("request %d: %d", i, last.Code)
		}
		if got := last.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(4-i) {
			t.Fatalf("remaining %q after %d", got, i+1)
		}
	}
	if last.Header.Get("X-RateLimit-Limit") != "5" {
		t.Fatalf("limit header %q", last.Header.Get("X-RateLimit-Limit"))
	}
	reset, _ := strconv.ParseInt(last.Header.Get("X-RateLimit-Reset"), 10, 64)
	if d := time.Until(time.Unix(reset, 0)); d <= 0 || d > 61*time.Second {
		t.Fatalf("reset %d is not a Unix time within the minute", reset)
	}
	r := a.Do("GET", "/api/instance/list", acct, nil)
	if r.Code != 429 || r.ErrorMessage() != "Rate limit exceeded. Try again later." || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %s retry-after=%q", r.Code, r.Raw, r.Header.Get("Retry-After"))
	}
	// Another token has its own window; unauthenticated calls are limited by
	// address (probes have their own budget: TestHardening_ProbesHaveTheirOwnBudget).
	if r := a.Do("GET", "/api/nodes", "", nil); r.Code != 200 || r.Header.Get("X-RateLimit-Limit") != "5" {
		t.Fatalf("other key: %d %v", r.Code, r.Header)
	}
}

func TestServer_CreateInstanceLimit(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{Configure: func(c *config.Config) { c.RateLimit = 1000 }})
	for i := 0; i < 20; i++ {
		r := a.Do("POST", "/api/instance/new", acct, map[string]any{"name": fmt.Sprintf("i%d", i), "engine": "sandbox"})
		if r.Code != 201 {
			t.Fatalf("create %d: %d %s", i, r.Code, r.Raw)
		}
	}
	r := a.Do("POST", "/api/instance/new", acct, map[string]any{"name": "i20", "engine": "sandbox"})
	if r.Code != 429 || r.Header.Get("X-RateLimit-Limit") != "20" {
		t.Fatalf("21st creation: %d %s", r.Code, r.Raw)
	}
}

func TestServer_SendStatusErrors(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	a.CreateInstance("sales", "sandbox")
	a.CreateInstance("offline", "sandbox")
	if r := a.Do("DELETE", "/api/instance/logout/offline", acct, nil); r.Code != 200 {
		t.Fatalf("logout: %d %s", r.Code, r.Raw)
	}
	cases := []struct {
		name, path, body string
		code             int
		status, msg      string
	}{
		{"InstanceNameRequired", "/api/message/status/", `{"type":"text","message":"a"}`, 400, "", "Instance name is required"},
		{"InvalidBody", "/api/message/status/sales", `{"type":"text",`, 400, "", "Invalid request body: unexpected EOF"},
		{"InvalidFieldType", "/api/message/status/sales", `{"type":"text","message":["a"]}`, 400, "", "Invalid request body: message: expected string, but got array"},
		{"TypeRequired", "/api/message/status/sales", `{"message":"a"}`, 400, "", "Type must be one of: text, image, video, audio"},
		{"TypeUnknown", "/api/message/status/sales", `{"type":"gif","message":"a"}`, 400, "", "Type must be one of: text, image, video, audio"},
		{"MessageRequired", "/api/message/status/sales", `{"type":"text"}`, 400, "", "Message is required"},
		{"MediaURLRequired", "/api/message/status/sales", `{"type":"video"}`, 400, "", "MediaURL is required for type: video"},
		{"UnknownFont", "/api/message/status/sales", `{"type":"text","message":"a","font":"papyrus"}`, 400, "", "Invalid request body: font must be one of: system, sans-serif, serif, script, bold, morningbreeze, calistoga, exo2, courierprime, monospace, handwriting, extrabold"},
		{"InstanceNotFound", "/api/message/status/ghost", `{"type":"text","message":"a"}`, 404, "", "Instance not found"},
		{"Disconnected", "/api/message/status/offline", `{"type":"text","message":"a"}`, 503, "disconnected", "Instance is not connected to WhatsApp"},
		{"DisconnectedBeforeMedia", "/api/message/status/offline", `{"type":"image","mediaUrl":"http://127.0.0.1:1/x.jpg"}`, 503, "disconnected", "Instance is not connected to WhatsApp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := a.Do("POST", tc.path, acct, tc.body)
			if r.Code != tc.code || r.ErrorMessage() != tc.msg || r.ErrorStatus() != tc.status {
				t.Fatalf("got %d %q %q, want %d %q %q (%s)", r.Code, r.ErrorStatus(), r.ErrorMessage(), tc.code, tc.status, tc.msg, r.Raw)
			}
		})
	}
}

func TestServer_Envelopes(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	a.CreateInstance("sales", "sandbox")

	t.Run("RouteNotFound", func(t *testing.T) {
		r := a.Do("GET", "/api/nope", acct, nil)
		if r.Code != 404 || r.ErrorMessage() != "Route not found" || r.Body["success"] != false {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		r := a.Do("PUT", "/api/message/status/sales", acct, nil)
		if r.Code != 405 || r.ErrorMessage() != "Method not allowed" {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
	t.Run("BodyTooLarge", func(t *testing.T) {
		// Announce a 2 MiB body and send none of it: the server must answer
		// 413 from the Content-Length alone. (Writing the whole body races
		// the server closing the connection after its answer.)
		conn, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/message/status/sales HTTP/1.1\r\nHost: x\r\ntoken: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", acct, 2<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Success bool `json:"success"`
			Error   struct {
				Message string `json:"message"`
			} `json:"error"`
			TraceID string `json:"traceId"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 413 || body.Success || body.Error.Message != "Request body too large" || body.TraceID == "" || resp.Header.Get("traceparent") == "" {
			t.Fatalf("%d %+v", resp.StatusCode, body)
		}
	})
	t.Run("TraceparentContinued", func(t *testing.T) {
		const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		r := a.Do("POST", "/api/message/status/sales", acct, `{"type":"text","message":"traced"}`, "traceparent", parent)
		tp := r.Header.Get("traceparent")
		if r.Code != 200 || !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") {
			t.Fatalf("traceparent %q (%s)", tp, r.Raw)
		}
		if r.Data()["traceId"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Fatalf("data.traceId %v", r.Data()["traceId"])
		}
	})
	t.Run("TraceparentOnErrors", func(t *testing.T) {
		r := a.Do("GET", "/api/instance/list", "", nil)
		tp := r.Header.Get("traceparent")
		if r.Code != 401 || len(tp) != 55 || !strings.Contains(tp, r.Body["traceId"].(string)) {
			t.Fatalf("traceparent %q traceId %v", tp, r.Body["traceId"])
		}
	})
}

// TestServer_TextStatusLifecycle publishes a text status, finds the exact
// message in the sandbox record, and deletes it, on both databases.
func TestServer_TextStatusLifecycle(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			a := apptest.New(t, apptest.Options{Dialect: d})
			tok := a.CreateInstance("sales", "sandbox")
			r := a.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"Black Friday","backgroundColor":"#FF5733","font":"bold","source":"crm"}`)
			if r.Code != 200 || r.Body["status"] != "sent" {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			data := r.Data()
			id := data["messageId"].(string)
			if !strings.HasPrefix(id, "3EB0") || data["messageType"] != "text" || data["source"] != "crm" ||
				data["chat"].(map[string]any)["jid"] != "status@broadcast" {
				t.Fatalf("data %v", data)
			}
			l := a.Do("GET", "/api/sandbox/sales/statuses", tok, nil)
			sts := l.Body["statuses"].([]any)
			if len(sts) != 1 {
				t.Fatalf("%s", l.Raw)
			}
			st := sts[0].(map[string]any)
			ext := st["message"].(map[string]any)["extendedTextMessage"].(map[string]any)
			if st["messageId"] != id || st["source"] != "crm" || st["traceId"] != data["traceId"] ||
				ext["text"] != "Black Friday" || ext["backgroundArgb"] != float64(0xFFFF5733) || ext["textArgb"] != float64(0xFFFFFFFF) || ext["font"] != "SYSTEM_BOLD" {
				t.Fatalf("recorded %v", st)
			}
			// Delete: validation, unknown id, revoke, delete for me.
			if r := a.Do("DELETE", "/api/chat/delete/sales", tok, `{}`); r.Code != 400 || r.ErrorMessage() != "MessageID is required" {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			if r := a.Do("DELETE", "/api/chat/delete/sales", tok, `{"messageId":"3EB0NOPE"}`); r.Code != 404 || r.ErrorMessage() != "message not found" {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			r = a.Do("DELETE", "/api/chat/delete/sales", tok, fmt.Sprintf(`{"messageId":%q,"deleteForEveryone":true}`, id))
			if r.Code != 200 || r.Body["message"] != "Message deleted for everyone" || r.Body["delete_type"] != "revoke" || r.Body["messageId"] != id {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			if l := a.Do("GET", "/api/sandbox/sales/statuses", tok, nil); l.Body["statuses"].([]any)[0].(map[string]any)["revoked"] != true {
				t.Fatalf("not revoked: %s", l.Raw)
			}
			r = a.Do("DELETE", "/api/chat/delete/sales", tok, fmt.Sprintf(`{"messageId":%q}`, id))
			if r.Code != 200 || r.Body["message"] != "Message deleted for me" || r.Body["delete_type"] != "delete_for_me" {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
		})
	}
}

// TestServer_Restart: instances and tokens survive a restart on the same data.
func TestServer_Restart(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			first := apptest.New(t, apptest.Options{Dialect: d})
			tok := first.CreateInstance("sales", "sandbox")
			r := first.Do("POST", "/api/message/status/sales", tok, `{"type":"text","message":"before restart"}`)
			id := r.Data()["messageId"].(string)
			first.Stop(t.Context())

			second := apptest.New(t, apptest.Options{Dialect: d, DataDir: first.DataDir, DatabaseURL: first.DBURL,
				Configure: func(c *config.Config) { c.AccountToken = "" }})
			// Without the configured account token the instance token must
			// still work on its own instance: tokens live in the database.
			l := second.Do("GET", "/api/instance/list", tok, nil)
			if l.Code != 200 || l.Body["message"] != "1 Instances found" {
				t.Fatalf("%d %s", l.Code, l.Raw)
			}
			inst := l.Body["instances"].([]any)[0].(map[string]any)
			if inst["connection"].(map[string]any)["state"] != "connected" {
				t.Fatalf("sandbox not reconnected: %v", inst)
			}
			r = second.Do("DELETE", "/api/chat/delete/sales", tok, fmt.Sprintf(`{"messageId":%q,"deleteForEveryone":true}`, id))
			if r.Code != 200 {
				t.Fatalf("delete after restart: %d %s", r.Code, r.Raw)
			}
		})
	}
}
