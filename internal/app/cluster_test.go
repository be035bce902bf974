package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/natstest"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// replicaSet is n statusflow replicas on one PostgreSQL database and one
// NATS cluster, clustering on.
type replicaSet struct {
	apps   []*apptest.App
	nats   *natstest.Cluster
	st     *store.Store
	opens  *openCounter
	dead   []atomic.Bool
	ttl    time.Duration
	dbURL  string
	prefix string
}

func startReplicas(t *testing.T, n int, ttl time.Duration, configure func(*config.Config)) *replicaSet {
	t.Helper()
	rs := &replicaSet{nats: natstest.StartCluster(t, 3), dbURL: storetest.NewURL(t, store.Postgres), ttl: ttl,
		opens: &openCounter{open: map[string]map[string]int{}, dead: map[string]bool{}}, dead: make([]atomic.Bool, n)}
	st, err := store.Open(context.Background(), rs.dbURL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs.st = st
	for i := range n {
		replica := fmt.Sprintf("r%d", i+1)
		rs.apps = append(rs.apps, apptest.New(t, apptest.Options{
			Dialect: store.Postgres, DatabaseURL: rs.dbURL,
			Engines: []whatsapp.Engine{&countingEngine{Engine: whatsapp.NewSandbox(st), replica: replica, c: rs.opens}},
			Configure: func(c *config.Config) {
				c.NATSURL = rs.nats.URLs()
				c.NATSUser, c.NATSPassword = "", ""
				c.NATSReplicas = 3
				c.ClusterReplica = replica
				c.ClusterLeaseTTL = ttl
				if configure != nil {
					configure(c)
				}
			},
		}))
	}
	return rs
}

func (rs *replicaSet) live() []int {
	var out []int
	for i := range rs.apps {
		if !rs.dead[i].Load() {
			out = append(out, i)
		}
	}
	return out
}

// crash stops replica i the way kill -9 does, as far as the others can
// tell: it stops answering, its NATS connection drops (no renewal, no
// release: its leases lapse after the TTL), and its sessions are gone from
// the engine's point of view at once.
func (rs *replicaSet) crash(t *testing.T, i int) {
	t.Helper()
	rs.dead[i].Store(true)
	// The connection first: from then on it can take no lease.
	rs.apps[i].Bus.Conn().Close()
	rs.opens.die(rs.apps[i].Config.ClusterReplica)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs.apps[i].Server.Shutdown(ctx)
}

// TestCluster_SharedRateLimit: three replicas share one token's budget: the
// requests of one window spread over them are allowed exactly up to the
// limit, with one count behind X-RateLimit-Remaining, and every replica
// answers 429 with Retry-After past it.
func TestCluster_SharedRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 30
	rs := startReplicas(t, 3, 5*time.Second, func(c *config.Config) { c.RateLimit = limit })
	// A window may end mid-run; then the counts start again and the run is
	// repeated in the next window.
	for attempt := 0; ; attempt++ {
		if attempt == 3 {
			t.Fatal("three runs straddled a window boundary")
		}
		resets := map[string]bool{}
		allowed := 0
		var failures []string
		for i := range limit + 10 {
			r := rs.apps[i%3].Do("GET", "/api/instance/list", apptest.AccountToken, nil)
			resets[r.Header.Get("X-RateLimit-Reset")] = true
			if got := r.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
				failures = append(failures, fmt.Sprintf("request %d: X-RateLimit-Limit %q", i, got))
			}
			remaining := r.Header.Get("X-RateLimit-Remaining")
			switch r.Code {
			case 200:
				allowed++
				if want := strconv.Itoa(limit - allowed); remaining != want {
					failures = append(failures, fmt.Sprintf("request %d (replica %d): remaining %s, want %s", i, i%3, remaining, want))
				}
			case 429:
				if remaining != "0" || r.Header.Get("Retry-After") == "" {
					failures = append(failures, fmt.Sprintf("request %d: 429 with remaining %q, Retry-After %q", i, remaining, r.Header.Get("Retry-After")))
				}
			default:
				t.Fatalf("request %d: %d %s", i, r.Code, r.Raw)
			}
		}
		if len(resets) > 1 {
			continue
		}
		if allowed != limit {
			t.Errorf("%d requests allowed across 3 replicas, want %d", allowed, limit)
		}
		for _, f := range failures {
			t.Error(f)
		}
		return
	}
}

func (rs *replicaSet) createInstances(t *testing.T, n int) []string {
	t.Helper()
	ctx := context.Background()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("so-%02d", i)
		// Through the managers (instance creation has its own, smaller
		// limit): each replica creates and so owns a third.
		if _, _, err := rs.apps[i%len(rs.apps)].Manager.Create(ctx, names[i], whatsapp.EngineSandbox, "h-"+names[i]); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// openCounter counts, at the engine, on which replicas each instance's
// session is open.
type openCounter struct {
	mu         sync.Mutex
	open       map[string]map[string]int // instance → replica → open sessions
	dead       map[string]bool
	violations []string
}

func (c *openCounter) opened(replica, instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead[replica] {
		// A session whose lease was taken just before the crash: in a real
		// crash it never opens.
		return
	}
	if c.open[instance] == nil {
		c.open[instance] = map[string]int{}
	}
	c.open[instance][replica]++
	if n := len(c.open[instance]); n > 1 || c.open[instance][replica] > 1 {
		c.violations = append(c.violations, fmt.Sprintf("%s open on %d replicas at once (%v)", instance, n, c.open[instance]))
	}
}

func (c *openCounter) closed(replica, instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead[replica] {
		return
	}
	if c.open[instance][replica]--; c.open[instance][replica] <= 0 {
		delete(c.open[instance], replica)
	}
}

// sent counts a send: one while the instance is open on another replica is
// the double send ownership exists to prevent. (A crashed replica's send
// still in flight at the crash is not one, as long as no one else holds the
// instance yet: in a real crash it dies with the process.)
func (c *openCounter) sent(replica, instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range c.open[instance] {
		if r != replica {
			c.violations = append(c.violations, fmt.Sprintf("%s sent from %s while open on %s", instance, replica, r))
		}
	}
}

// die closes every session of replica at once, as a killed process does.
func (c *openCounter) die(replica string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead[replica] = true
	for _, m := range c.open {
		delete(m, replica)
	}
}

func (c *openCounter) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		t.Error(v)
	}
}

// countingEngine wraps the sandbox engine of one replica to count its
// sessions at the engine.
type countingEngine struct {
	whatsapp.Engine
	replica string
	c       *openCounter
}

func (e *countingEngine) Open(ctx context.Context, p whatsapp.OpenParams) (whatsapp.Session, error) {
	s, err := e.Engine.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	e.c.opened(e.replica, p.Instance)
	return &countedSession{Session: s, e: e, instance: p.Instance}, nil
}

type countedSession struct {
	whatsapp.Session
	e        *countingEngine
	instance string
	once     sync.Once
}

func (s *countedSession) Close() error {
	s.once.Do(func() { s.e.c.closed(s.e.replica, s.instance) })
	return s.Session.Close()
}

func (s *countedSession) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	s.e.c.sent(s.e.replica, s.instance)
	return s.Session.SendStatus(ctx, id, msg)
}

// SendStatusTx keeps the sandbox's in-transaction send (the status service
// records the send in the same commit as its events).
func (s *countedSession) SendStatusTx(ctx context.Context, tx *sql.Tx, id string, msg *waE2E.Message, at time.Time) error {
	s.e.c.sent(s.e.replica, s.instance)
	return s.Session.(interface {
		SendStatusTx(context.Context, *sql.Tx, string, *waE2E.Message, time.Time) error
	}).SendStatusTx(ctx, tx, id, msg, at)
}
