package apptest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/natstest"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// ClusterOptions configure [NewCluster].
type ClusterOptions struct {
	// Replicas is how many statusflow replicas to start (default 2).
	Replicas int
	// LeaseTTL is STATUSFLOW_CLUSTER_LEASE_TTL (default 2 s: failover in a test's time).
	LeaseTTL time.Duration
	// NATSURL is the NATS server or cluster the replicas share (a 3-node
	// cluster a test started, say). Empty: one JetStream server is started
	// in the test process ([StartNATS]). It must accept [NATSUser] /
	// [NATSPassword], the replicas' login.
	NATSURL string
	// DatabaseURL is the PostgreSQL database they share. Empty: a fresh one.
	DatabaseURL string
	// Configure changes replica i's configuration after the cluster settings.
	Configure func(i int, cfg *config.Config)
	// WrapEngine, when set, wraps each engine of replica id once built
	// (e.g. a sandbox that counts sessions at the engine).
	WrapEngine func(id string, e whatsapp.Engine) whatsapp.Engine
}

// Cluster is several statusflow replicas on one PostgreSQL database and
// one NATS, each a whole app in this process (own HTTP listener, data dir,
// NATS connection, manager), with clustering on.
type Cluster struct {
	T        testing.TB
	NATSURL  string
	DBURL    string
	Replicas []*Replica

	opts ClusterOptions
}

// Replica is one replica of a [Cluster].
type Replica struct {
	*App
	// ID is its STATUSFLOW_CLUSTER_REPLICA ("r0", "r1", …).
	ID string
	// Killed is set by [Cluster.Kill].
	Killed bool
}

// StartNATS starts a NATS server with JetStream on a free loopback port
// that accepts the test apps' login, stopped when the test ends, and
// returns its URL.
func StartNATS(t testing.TB) string {
	t.Helper()
	return natstest.Start(t, NATSUser, NATSPassword)
}

// NewCluster starts the replicas one after the other (the first applies
// the migrations; the others find them under the advisory lock) and stops
// them when the test ends.
func NewCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Replicas <= 0 {
		o.Replicas = 2
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Second
	}
	if o.NATSURL == "" {
		o.NATSURL = StartNATS(t)
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = storetest.NewURL(t, store.Postgres)
	}
	c := &Cluster{T: t, NATSURL: o.NATSURL, DBURL: o.DatabaseURL, opts: o}
	for range o.Replicas {
		c.Add()
	}
	return c
}

// Add starts one more replica ("r<n>"), as a replica joining the cluster.
func (c *Cluster) Add() *Replica {
	c.T.Helper()
	i, o := len(c.Replicas), c.opts
	id := fmt.Sprint("r", i)
	var wrap func(whatsapp.Engine) whatsapp.Engine
	if o.WrapEngine != nil {
		wrap = func(e whatsapp.Engine) whatsapp.Engine { return o.WrapEngine(id, e) }
	}
	a := New(c.T, Options{Dialect: store.Postgres, DatabaseURL: o.DatabaseURL, WrapEngine: wrap, Configure: func(cfg *config.Config) {
		cfg.NATSURL = o.NATSURL
		cfg.ClusterReplica = id
		cfg.ClusterLeaseTTL = o.LeaseTTL
		if o.Configure != nil {
			o.Configure(i, cfg)
		}
	}})
	r := &Replica{App: a, ID: id}
	c.Replicas = append(c.Replicas, r)
	return r
}

// Replica returns the replica of that id, nil if none.
func (c *Cluster) Replica(id string) *Replica {
	for _, r := range c.Replicas {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Live returns the replicas not killed.
func (c *Cluster) Live() []*Replica {
	var out []*Replica
	for _, r := range c.Replicas {
		if !r.Killed {
			out = append(out, r)
		}
	}
	return out
}

// Kill stops replica r as kill -9 looks to the rest of the cluster: its
// NATS connection drops first, so it renews and releases no lease and
// answers no forwarded command; its leases lapse after the TTL. (The
// process's goroutines then stop, so the test leaks nothing.)
func (c *Cluster) Kill(r *Replica) {
	c.T.Helper()
	r.Killed = true
	r.Bus.Conn().Close()
	r.Stop(context.Background())
}

// Owner returns the replica holding instance's lease ("" when none), read
// through a live replica.
func (c *Cluster) Owner(instance string) string {
	c.T.Helper()
	for _, r := range c.Live() {
		owner, _, err := r.Leases.Owner(context.Background(), instance)
		if err != nil {
			c.T.Fatalf("owner of %s: %v", instance, err)
		}
		return owner
	}
	c.T.Fatal("no live replica")
	return ""
}

// WaitOwner waits (up to 30 s) until instance is owned by a live replica
// other than not, and returns it.
func (c *Cluster) WaitOwner(instance, not string) *Replica {
	c.T.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if id := c.Owner(instance); id != "" && id != not {
			if r := c.Replica(id); r != nil && !r.Killed {
				if _, held := r.Leases.Held(instance); held {
					return r
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.T.Fatalf("%s: no live owner but %q within 30 s", instance, not)
	return nil
}
