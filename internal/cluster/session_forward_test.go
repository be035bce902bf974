package cluster_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// engineLog counts, at the engine, what each replica's sandbox did:
// "open sess@r0", "connect sess@r0", "logout sess@r0".
type engineLog struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *engineLog) add(what, instance, replica string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n[what+" "+instance+"@"+replica]++
}

func (l *engineLog) count(what, instance, replica string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[what+" "+instance+"@"+replica]
}

// loggedEngine is one replica's sandbox engine, logging into engineLog.
type loggedEngine struct {
	whatsapp.Engine
	replica string
	log     *engineLog
}

func (e *loggedEngine) Open(ctx context.Context, p whatsapp.OpenParams) (whatsapp.Session, error) {
	s, err := e.Engine.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	e.log.add("open", p.Instance, e.replica)
	return &loggedSession{Session: s, e: e, instance: p.Instance}, nil
}

type loggedSession struct {
	whatsapp.Session
	e        *loggedEngine
	instance string
}

func (s *loggedSession) Connect(ctx context.Context, phone string) (*whatsapp.Pairing, error) {
	s.e.log.add("connect", s.instance, s.e.replica)
	return s.Session.Connect(ctx, phone)
}

func (s *loggedSession) Reconnect(ctx context.Context) error {
	s.e.log.add("reconnect", s.instance, s.e.replica)
	return s.Session.Reconnect(ctx)
}

func (s *loggedSession) Logout(ctx context.Context) error {
	s.e.log.add("logout", s.instance, s.e.replica)
	return s.Session.Logout(ctx)
}

func (s *loggedSession) Close() error {
	s.e.log.add("close", s.instance, s.e.replica)
	return s.Session.Close()
}

// Audience keeps the sandbox's audience reader (GET /api/instance/audience).
func (s *loggedSession) Audience(ctx context.Context) (*whatsapp.Audience, error) {
	return s.Session.(whatsapp.AudienceReader).Audience(ctx)
}

// The routes that need the live session, sent to a replica that does not
// own the instance, act on the owner's session (counted at the engine: the
// other replica opens nothing), answer with the owner's envelope and the
// caller's trace id, and are counted as forwarded; in the failover gap
// they answer 503 disconnected with Retry-After.
func TestForward_SessionRoutes(t *testing.T) {
	t.Parallel()
	const ttl = 6 * time.Second
	log := &engineLog{n: map[string]int{}}
	c := apptest.NewCluster(t, apptest.ClusterOptions{Replicas: 2, LeaseTTL: ttl,
		WrapEngine: func(id string, e whatsapp.Engine) whatsapp.Engine {
			if e.Name() != whatsapp.EngineSandbox {
				return e
			}
			return &loggedEngine{Engine: e, replica: id, log: log}
		}})
	owner, b := c.Replicas[0], c.Replicas[1]
	tok := owner.CreateInstance("sess", "sandbox")
	if got := c.Owner("sess"); got != owner.ID {
		t.Fatalf("owner = %q, want %s", got, owner.ID)
	}
	const trace = "0af7651916cd43dd8448eb211c80319c"
	tp := []string{"traceparent", "00-" + trace + "-b7ad6b7169203331-01"}

	r := b.Do("GET", "/api/instance/connect/sess", tok, nil, tp...)
	if r.Code != 200 || r.Body["status"] != "connected" {
		t.Fatalf("connect via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	if traceIDOf(r.Header.Get("traceparent")) != trace {
		t.Fatalf("connect via %s: traceparent %q, want trace %s", b.ID, r.Header.Get("traceparent"), trace)
	}
	if r.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("connect via %s: no X-RateLimit-* headers", b.ID)
	}
	if n := log.count("connect", "sess", owner.ID); n != 1 {
		t.Fatalf("connects at the owner's engine = %d, want 1", n)
	}

	r = b.Do("PUT", "/api/instance/audience/sess", tok, map[string]any{"mode": "contacts", "count": 7})
	if r.Code != 200 {
		t.Fatalf("PUT audience via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	r = b.Do("GET", "/api/instance/audience/sess?limit=3", tok, nil)
	a, _ := r.Data()["audience"].(map[string]any)
	if a == nil {
		a, _ = r.Body["audience"].(map[string]any)
	}
	if r.Code != 200 || a["recipients"] != float64(7) || len(a["list"].([]any)) != 3 {
		t.Fatalf("GET audience via %s: %d %s", b.ID, r.Code, r.Raw)
	}

	// An error answer of the owner comes back as it is.
	r = b.Do("GET", "/api/instance/connect/sess?number=12", tok, nil)
	if r.Code != 400 || !strings.HasPrefix(r.ErrorMessage(), "Invalid number") || r.Body["traceId"] == nil {
		t.Fatalf("connect with a bad number via %s: %d %s", b.ID, r.Code, r.Raw)
	}

	r = b.Do("DELETE", "/api/instance/logout/sess", tok, nil)
	if r.Code != 200 || r.Body["status"] != "loggedout" {
		t.Fatalf("logout via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	if n := log.count("logout", "sess", owner.ID); n != 1 {
		t.Fatalf("logouts at the owner's engine = %d, want 1", n)
	}
	sess, err := owner.Manager.Session(context.Background(), "sess")
	if err != nil || sess.State() != whatsapp.StateLoggedOut {
		t.Fatalf("the owner's session after a logout via %s: %v %v", b.ID, sess.State(), err)
	}
	r = b.Do("POST", "/api/instance/reconnect/sess", tok, nil)
	if r.Code != 200 || log.count("reconnect", "sess", owner.ID) != 1 {
		t.Fatalf("reconnect via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	for _, what := range []string{"open", "connect", "logout", "reconnect"} {
		if n := log.count(what, "sess", b.ID); n != 0 {
			t.Fatalf("%s of sess on the non-owner %s: %d, want none", what, b.ID, n)
		}
	}
	// Authentication is checked where the request arrives too.
	if r := b.Do("GET", "/api/instance/connect/sess", "sfi_not-a-token", nil); r.Code != 401 {
		t.Fatalf("connect via %s with a wrong token: %d %s", b.ID, r.Code, r.Raw)
	}

	m := b.Do("GET", "/metrics", "", nil)
	if !strings.Contains(string(m.Raw), `statusflow_cluster_forwarded_total{kind="http",outcome="ok"}`) ||
		!strings.Contains(string(m.Raw), `statusflow_cluster_forwarded_total{kind="http",outcome="error"}`) {
		t.Fatalf("metrics lack the forwarded HTTP requests:\n%s", grepLines(string(m.Raw), "forwarded_total"))
	}

	// Deleting through the non-owner closes the owner's session, and the
	// instance's token stops working on the replica that was asked at once.
	r = b.Do("DELETE", "/api/instance/delete/sess", apptest.AccountToken, nil)
	if r.Code != 200 {
		t.Fatalf("delete via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	if log.count("close", "sess", owner.ID) != 1 {
		t.Fatalf("the owner's session was not closed by a delete via %s", b.ID)
	}
	if r := b.Do("GET", "/api/instance/audience/sess", tok, nil); r.Code != 401 {
		t.Fatalf("the deleted instance's token via %s: %d %s", b.ID, r.Code, r.Raw)
	}

	// The failover gap: the owner dies holding the lease.
	tok2 := owner.CreateInstance("gap", "sandbox")
	if got := c.Owner("gap"); got != owner.ID {
		t.Fatalf("owner of gap = %q, want %s", got, owner.ID)
	}
	c.Kill(owner)
	r = b.Do("GET", "/api/instance/audience/gap", tok2, nil, tp...)
	if r.Code != 503 || r.ErrorStatus() != "disconnected" || r.Body["traceId"] != trace {
		t.Fatalf("audience in the gap: %d %s", r.Code, r.Raw)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s != int(ttl/time.Second) {
		t.Fatalf("Retry-After in the gap = %q, want the lease TTL %d", r.Header.Get("Retry-After"), int(ttl/time.Second))
	}
	if n := log.count("open", "gap", b.ID); n != 0 {
		t.Fatalf("the gap opened gap's session on %s", b.ID)
	}
	// After the TTL the survivor owns it and serves it itself.
	c.WaitOwner("gap", owner.ID)
	r = b.Do("GET", "/api/instance/connect/gap", tok2, nil)
	if r.Code != 200 || log.count("connect", "gap", b.ID) != 1 {
		t.Fatalf("connect after failover: %d %s", r.Code, r.Raw)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}
