package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/config"
)

// publisher publishes text statuses through random live replicas, each
// under its own Idempotency-Key, retrying on 503 (the instance is owned
// elsewhere or is failing over) and 429 until it gets a 200.
type publisher struct {
	rs        *replicaSet
	instances []string
	tok       string

	mu     sync.Mutex
	ok     map[string]string // idempotency key → message id answered with 200
	errs   []string
	next   atomic.Int64
	served atomic.Int64
}

func (p *publisher) run(ctx context.Context, workers int) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := p.next.Add(1)
				p.publish(ctx, k)
			}
		}()
	}
	return wg.Wait
}

func (p *publisher) publish(ctx context.Context, k int64) {
	inst := p.instances[int(k)%len(p.instances)]
	key := fmt.Sprintf("pub-%d", k)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		live := p.rs.live()
		a := p.rs.apps[live[rand.IntN(len(live))]]
		r := a.Do("POST", "/api/message/status/"+inst, p.tok,
			map[string]any{"type": "text", "message": "scale-out " + key}, "Idempotency-Key", key)
		switch r.Code {
		case 200:
			p.mu.Lock()
			p.ok[key] = r.Data()["messageId"].(string)
			p.mu.Unlock()
			p.served.Add(1)
			return
		case 503, 429:
			if ctx.Err() != nil {
				return // stopping: this publish was never answered 200
			}
			continue
		default:
			p.mu.Lock()
			p.errs = append(p.errs, fmt.Sprintf("%s on %s: %d %s", key, inst, r.Code, r.Raw))
			p.mu.Unlock()
			return
		}
	}
	p.mu.Lock()
	p.errs = append(p.errs, fmt.Sprintf("%s on %s: no 200 within 60 s", key, inst))
	p.mu.Unlock()
}

// waitServed waits until n more publishes got their 200.
func (p *publisher) waitServed(t *testing.T, n int64) {
	t.Helper()
	target := p.served.Load() + n
	deadline := time.Now().Add(60 * time.Second)
	for p.served.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d publishes served after 60 s", p.served.Load(), target)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check verifies that every publish answered 200 has exactly one record at
// the engine, and that nothing else was sent.
func (p *publisher) check(t *testing.T) {
	t.Helper()
	for _, e := range p.errs {
		t.Error(e)
	}
	ctx := context.Background()
	want := map[string]bool{}
	for _, id := range p.ok {
		want[id] = true
	}
	seen := map[string]int{}
	for _, inst := range p.instances {
		recs, err := p.rs.st.SandboxStatusList(ctx, inst, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seen[r.MessageID]++
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("message %s answered 200 has %d records", id, seen[id])
		}
	}
	for id, n := range seen {
		if !want[id] && n > 1 {
			t.Errorf("message %s (never answered 200) has %d records", id, n)
		}
	}
	t.Logf("%d publishes answered 200, %d records", len(want), len(seen))
}

// TestCluster_ReplicaCrash: 3 replicas on a 3-node NATS cluster, 30
// sandbox instances, publishing through random replicas. A replica
// crashes mid-stream; within the failover bound its instances are owned and
// open elsewhere, every publish answered 200 has exactly one record, no
// instance was ever open on two live replicas at once (counted at the
// engine), and idempotent retries after the failover return the first
// message id without a second send.
func TestCluster_ReplicaCrash(t *testing.T) {
	t.Parallel()
	const ttl = 4 * time.Second
	rs := startReplicas(t, 3, ttl, func(c *config.Config) { c.RateLimit = 1 << 20 })
	names := rs.createInstances(t, 30)
	p := &publisher{rs: rs, instances: names, tok: apptest.AccountToken, ok: map[string]string{}}
	ctx, stop := context.WithCancel(context.Background())
	wait := p.run(ctx, 6)
	t.Cleanup(func() { stop(); wait() })
	p.waitServed(t, 60)

	victim := 0
	vr := rs.apps[victim].Config.ClusterReplica
	var theirs []string
	for _, n := range names {
		if _, ok := rs.apps[victim].Leases.Held(n); ok {
			theirs = append(theirs, n)
		}
	}
	if len(theirs) == 0 {
		t.Fatal("the victim owns no instance")
	}
	// Publishes answered before the crash on the victim's instances, to retry after it.
	p.mu.Lock()
	before := map[string]string{}
	for k, id := range p.ok {
		before[k] = id
	}
	p.mu.Unlock()

	rs.crash(t, victim)
	died := time.Now()
	survivor := rs.apps[1]
	deadline := died.Add(30 * time.Second)
	for {
		moved := 0
		for _, n := range theirs {
			owner, _, err := survivor.Leases.Owner(context.Background(), n)
			if err == nil && owner != "" && owner != vr {
				moved++
			}
		}
		if moved == len(theirs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d instances moved 30 s after the crash", moved, len(theirs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(died)
	p.waitServed(t, 60)
	stop()
	wait()

	// Idempotent retries after failover: the first message id, no second send.
	retried := 0
	for key, id := range before {
		if retried == 10 {
			break
		}
		k, _ := strconv.Atoi(key[len("pub-"):])
		inst := names[k%len(names)]
		for _, i := range rs.live() {
			r := rs.apps[i].Do("POST", "/api/message/status/"+inst, apptest.AccountToken,
				map[string]any{"type": "text", "message": "scale-out " + key}, "Idempotency-Key", key)
			if r.Code == 200 {
				if got := r.Data()["messageId"]; got != id {
					t.Errorf("retry of %s after failover: message id %v, first was %s", key, got, id)
				}
				retried++
				break
			}
		}
	}
	if retried == 0 {
		t.Error("no idempotent retry was answered 200 after the failover")
	}
	p.check(t)
	rs.opens.check(t)
	t.Logf("failover: %d instances of %s owned elsewhere %s after the crash (TTL %s, bound ≈ %s); %d publishes served",
		len(theirs), vr, took.Round(time.Millisecond), ttl, 4*ttl/3, p.served.Load())
	// The design bound is ≈ 4/3 TTL (lease expiry, then the next reconcile
	// tick); a run with -race beside other builds took 14.7 s with a 4 s
	// TTL (load 25), so the test allows 5×TTL: it catches a failover that
	// waits for anything but the lease (a second expiry, a restart), not a
	// slow machine. The measured figures are in README "Scaling out".
	if took > 5*ttl {
		t.Errorf("failover took %s, beyond 5×TTL", took)
	}
}

// TestCluster_NATSNodeKilled: one node of the 3-node NATS cluster dies
// mid-stream. The cluster keeps going (streams and buckets have 3 copies),
// the replicas connected to it reconnect to the others, publishing goes on,
// and every publish answered 200 has exactly one record.
func TestCluster_NATSNodeKilled(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3, 6*time.Second, func(c *config.Config) { c.RateLimit = 1 << 20 })
	names := rs.createInstances(t, 30)
	p := &publisher{rs: rs, instances: names, tok: apptest.AccountToken, ok: map[string]string{}}
	ctx, stop := context.WithCancel(context.Background())
	wait := p.run(ctx, 6)
	t.Cleanup(func() { stop(); wait() })
	p.waitServed(t, 60)

	killed := rs.nats.Nodes[0]
	killed.Kill()
	p.waitServed(t, 120)
	// Every replica is connected, and not to the dead node.
	for i, a := range rs.apps {
		deadline := time.Now().Add(30 * time.Second)
		for !a.Bus.Conn().IsConnected() || a.Bus.Conn().ConnectedUrl() == killed.URL {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d not reconnected to a live NATS node", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	wait()
	p.check(t)
	rs.opens.check(t)
}
