// Package natstest starts real NATS clusters for tests: embedded
// nats-server instances with JetStream, joined by routes on loopback, each
// with its own store directory (issue 14's scale-out tests).
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a running NATS cluster with JetStream.
type Cluster struct {
	t     testing.TB
	Name  string
	Nodes []*Node
}

// Node is one server of a [Cluster].
type Node struct {
	Name string
	// URL is the node's client URL (nats://127.0.0.1:port).
	URL string

	mu   sync.Mutex
	opts *server.Options
	srv  *server.Server
}

// StartCluster starts an n-node cluster on free loopback ports and waits
// until JetStream has a meta leader (streams and KV buckets can be created).
// Every node is shut down when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Name: "sf-test"}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])
	}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: t.TempDir(),
			NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: routePorts[i]},
			// Routes to every node (its own is ignored): any node can start first.
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		node := &Node{Name: opts.ServerName, URL: fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]), opts: opts}
		c.Nodes = append(c.Nodes, node)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, node := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = node.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			node.Kill()
		}
	})
	c.WaitJetStream(30 * time.Second)
	return c
}

// URLs is every node's client URL, comma-separated (a client given all of
// them reconnects to a survivor when its node dies).
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

// Connect returns a client of the cluster, closed when the test ends.
func (c *Cluster) Connect() *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// WaitJetStream waits until the running nodes answer JetStream requests
// (a meta leader is elected), failing the test after timeout.
func (c *Cluster) WaitJetStream(timeout time.Duration) {
	c.t.Helper()
	nc := c.Connect()
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats cluster: JetStream not ready after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the node at once (its clients see the connection drop). A
// second Kill is harmless.
func (n *Node) Kill() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts a killed node again on its ports and store directory.
func (n *Node) Restart() error { return n.start() }

// Running reports whether the node is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	opts := n.opts.Clone()
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats node %s: %w", n.Name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("nats node %s: not ready for connections", n.Name)
	}
	n.srv = srv
	return nil
}

// freePorts returns n loopback ports free at the time of the call.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], ports[i] = ln, ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// Start runs one NATS server with JetStream on a free loopback port, with
// its own store directory, until the test ends, and returns its URL. When
// user is not empty the server requires that login.
func Start(t testing.TB, user, password string) string {
	t.Helper()
	port := freePorts(t, 1)[0]
	ns, err := server.NewServer(&server.Options{ServerName: fmt.Sprintf("natstest-%d", port), Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}
