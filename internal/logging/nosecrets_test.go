package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/statusflow/statusflow/internal/app"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/logging"
)

// syncBuffer is a bytes.Buffer safe for the app's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startApp runs a whole statusflow on 127.0.0.1:0 with the logger under test.
func startApp(t *testing.T, accountToken string, logs io.Writer) *app.App {
	t.Helper()
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr, cfg.DataDir, cfg.AccountToken = "127.0.0.1:0", t.TempDir(), accountToken
	cfg.MediaAllowPrivate, cfg.WebhookAllowPrivate = true, true
	a, err := app.New(context.Background(), cfg, logging.New("json", logs))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Stop(context.Background())
		t.Fatalf("app.Start: %v", err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	return a
}

type session struct {
	t    *testing.T
	base string
}

func (s session) do(method, path string, body any, headers ...string) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// typical runs a usual session and returns every token it used.
func typical(t *testing.T, s session, acct string) []string {
	t.Helper()
	const custom = "my-own-instance-token-value-123456"
	code, body := s.do("POST", "/api/instance/new", map[string]any{"name": "sales", "engine": "sandbox"}, "token", acct)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	inst := body["instance"].(map[string]any)["token"].(string)
	if code, body := s.do("POST", "/api/instance/new", map[string]any{"name": "crm", "engine": "sandbox", "token": custom}, "Authorization", "Bearer "+acct); code != 201 {
		t.Fatalf("create with token: %d %v", code, body)
	}
	code, body = s.do("POST", "/api/message/status/sales", map[string]any{"type": "text", "message": "hi", "source": "crm"}, "token", inst)
	if code != 200 {
		t.Fatalf("publish: %d %v", code, body)
	}
	id := body["data"].(map[string]any)["messageId"].(string)
	s.do("POST", "/api/message/status/sales?token="+inst, map[string]any{"type": "image", "mediaUrl": "http://127.0.0.1:1/x.jpg"})
	s.do("POST", "/api/message/status/crm", map[string]any{"type": "text", "message": "hi"}, "Authorization", "Bearer "+custom)
	if code, body := s.do("DELETE", "/api/chat/delete/sales", map[string]any{"messageId": id, "deleteForEveryone": true}, "token", inst); code != 200 {
		t.Fatalf("delete: %d %v", code, body)
	}
	bad := []string{"sfa_wrong-token-that-must-not-leak-0000", "wrong-secret-in-bearer-header", "wrong-secret-in-the-query-string"}
	s.do("POST", "/api/message/status/sales", map[string]any{"type": "text", "message": "hi"}, "token", bad[0])
	s.do("GET", "/api/instance/list", nil, "Authorization", "Bearer "+bad[1])
	s.do("GET", "/api/instance/list?token="+bad[2], nil)
	s.do("GET", "/api/events/log/sales?token="+inst, nil)
	s.do("POST", "/api/message/status/crm", map[string]any{"type": "text", "message": "hi"}, "token", inst) // 403
	s.do("DELETE", "/api/instance/delete/crm", nil, "token", acct)
	s.do("GET", "/metrics", nil)
	return append([]string{acct, inst, custom}, bad...)
}

func TestLogs_NoTokenInAWholeSession(t *testing.T) {
	t.Parallel()
	const acct = "sfa_configured-account-token-must-not-leak"
	var logs syncBuffer
	a := startApp(t, acct, &logs)
	used := typical(t, session{t, "http://" + a.Addr()}, acct)
	a.Stop(context.Background())
	out := logs.String()
	if !strings.Contains(out, "statusflow listening") {
		t.Fatalf("logs not captured: %s", out)
	}
	for _, tok := range used {
		if strings.Contains(out, tok) {
			t.Errorf("token %q appears in the logs:\n%s", tok, out)
		}
	}
}

// A generated account token is shown exactly once, in the announcement, and
// never again however it is used.
func TestLogs_GeneratedAccountTokenShownOnce(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	a := startApp(t, "", &logs)
	m := regexp.MustCompile(`"accountToken":"(sfa_[A-Za-z0-9_-]+)"`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no announcement: %s", logs.String())
	}
	used := typical(t, session{t, "http://" + a.Addr()}, m[1])
	a.Stop(context.Background())
	out := logs.String()
	if n := strings.Count(out, m[1]); n != 1 {
		t.Errorf("account token appears %d times:\n%s", n, out)
	}
	for _, tok := range used[1:] {
		if strings.Contains(out, tok) {
			t.Errorf("token %q appears in the logs:\n%s", tok, out)
		}
	}
}
