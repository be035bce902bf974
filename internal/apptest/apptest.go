// Package apptest starts whole statusflow apps for tests: real store, real
// engines, real HTTP front door on loopback.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/statusflow/statusflow/internal/app"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/logging"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// AccountToken is the TokenAccount of every test app.
const AccountToken = "sfa_test-account-token-0123456789abcdef"

// NATSUser and NATSPassword log external clients in to a test app's
// embedded NATS server.
const (
	NATSUser     = "statusflow"
	NATSPassword = "test-nats-password-0123456789"
)

// Options change a test app's configuration.
type Options struct {
	Dialect store.Dialect
	// DataDir reuses a data dir (restart tests); empty: a fresh one.
	DataDir string
	// DatabaseURL reuses a database (restart tests on PostgreSQL).
	DatabaseURL string
	Configure   func(*config.Config)
	// Logs receives the app's log output; nil discards it.
	Logs io.Writer
	// Engines replace the built-in engines of the same name.
	Engines []whatsapp.Engine
	// WrapEngine, when set, wraps every engine once built (count sessions
	// at the engine seam, keeping the built-in engine's wiring).
	WrapEngine func(whatsapp.Engine) whatsapp.Engine
}

// App is a started test app.
type App struct {
	*app.App
	T       testing.TB
	DataDir string
	DBURL   string

	guard *leakGuard
}

// New starts an app and stops it when the test ends.
func New(t testing.TB, o Options) *App {
	t.Helper()
	if o.Dialect == "" {
		o.Dialect = store.SQLite
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.DatabaseURL == "" && o.Dialect == store.Postgres {
		o.DatabaseURL = storetest.NewURL(t, store.Postgres)
	}
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = o.DataDir
	cfg.DatabaseURL = o.DatabaseURL
	cfg.AccountToken = AccountToken
	cfg.NATSUser, cfg.NATSPassword = NATSUser, NATSPassword
	cfg.MediaAllowPrivate = true
	cfg.WebhookAllowPrivate = true
	if o.Configure != nil {
		o.Configure(cfg)
	}
	w := o.Logs
	if w == nil {
		w = io.Discard
	}
	guard := &leakGuard{w: w}
	guard.add(cfg.AccountToken)
	guard.add(cfg.NATSPassword)
	t.Cleanup(func() { guard.check(t) })
	var opts []app.Option
	for _, e := range o.Engines {
		opts = append(opts, app.WithEngine(e))
	}
	if o.WrapEngine != nil {
		opts = append(opts, app.WithEngineWrapper(o.WrapEngine))
	}
	a, err := app.New(context.Background(), cfg, logging.New("json", guard), opts...)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Stop(context.Background())
		t.Fatalf("app.Start: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { a.Stop(context.Background()) }) })
	return &App{App: a, T: t, DataDir: o.DataDir, DBURL: o.DatabaseURL, guard: guard}
}

// Response is a decoded answer.
type Response struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Do sends a request through the app's Fiber handler (no network) with the
// token in the `token` header when tok is not empty.
func (a *App) Do(method, path, tok string, body any, headers ...string) *Response {
	a.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("token", tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.Server.App().Test(req, -1)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &Response{Code: resp.StatusCode, Header: resp.Header, Raw: raw}
	json.Unmarshal(raw, &r.Body)
	return r
}

// CreateInstance creates an instance with the account token and returns its token.
func (a *App) CreateInstance(name, engine string) string {
	a.T.Helper()
	r := a.Do("POST", "/api/instance/new", AccountToken, map[string]any{"name": name, "engine": engine})
	if r.Code != 201 {
		a.T.Fatalf("create instance %s: %d %s", name, r.Code, r.Raw)
	}
	tok := r.Body["instance"].(map[string]any)["token"].(string)
	a.guard.add(tok)
	return tok
}

// ErrorMessage returns error.message of an error envelope.
func (r *Response) ErrorMessage() string {
	e, _ := r.Body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// ErrorStatus returns error.status of an error envelope.
func (r *Response) ErrorStatus() string {
	e, _ := r.Body["error"].(map[string]any)
	m, _ := e["status"].(string)
	return m
}

// Data returns the `data` object of a success envelope.
func (r *Response) Data() map[string]any {
	d, _ := r.Body["data"].(map[string]any)
	return d
}
