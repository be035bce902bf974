package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/nodes"
)

const (
	accountToken  = "sfa_bus-test-account-token-0123456789"
	instanceToken = "sfi_bus-test-sales-token-0123456789ab"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("BUS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testServer is a nats-server with JetStream run by a test, on its own port
// and store, so it can be stopped and started again.
type testServer struct {
	t    testing.TB
	opts *server.Options
	ns   *server.Server
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer starts a JetStream server on a free port with its store in a
// temp dir; it is shut down when the test ends.
func startServer(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{t: t, opts: &server.Options{
		ServerName: "bus-test", Host: "127.0.0.1", Port: freePort(t),
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	ns, err := server.NewServer(s.opts)
	if err != nil {
		s.t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats server not ready")
	}
	s.ns = ns
}

func (s *testServer) stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

func (s *testServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// connect opens a client connection that reconnects forever; closed at cleanup.
func connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// withJetStream runs fn against a fresh embedded JetStream server.
func withJetStream(t *testing.T, fn func(t *testing.T, nc *nats.Conn, js jetstream.JetStream)) {
	t.Helper()
	s := startServer(t)
	nc, js := connect(t, s.URL())
	fn(t, nc, js)
}

// uniquePrefix returns a subject prefix no other test uses.
func uniquePrefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "sftest" + hex.EncodeToString(b)
}

// core is the real publishing core on the sandbox engine with a "sales"
// instance, as the app wires it.
type core struct {
	Store    *store.Store
	Manager  *whatsapp.Manager
	Service  *status.Service
	Recorder *events.Recorder
	Catalog  *nodes.Catalog
	Auth     *auth.Authenticator
}

func newCore(t testing.TB) *core {
	t.Helper()
	return newCoreWith(t, true)
}

// newCoreWith builds the core with the store-backed idempotency, or none.
func newCoreWith(t testing.TB, idempotency bool) *core {
	t.Helper()
	ctx := context.Background()
	log := testLogger(t)
	st := storetest.New(t, store.SQLite)
	mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	t.Cleanup(func() { mgr.Stop(context.Background()) })
	rec := events.NewRecorder(st, log)
	var idem status.Idempotency
	if idempotency {
		idem = status.NewIdempotent(st, status.IdempotencyConfig{})
	}
	svc := status.NewService(mgr, st, nil, rec, idem, log)
	if _, _, err := mgr.Create(ctx, "sales", "sandbox", auth.HashToken(instanceToken)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mgr.Create(ctx, "other", "sandbox", auth.HashToken(instanceToken+"-other")); err != nil {
		t.Fatal(err)
	}
	return &core{Store: st, Manager: mgr, Service: svc, Recorder: rec,
		Catalog: nodes.Default(svc, nil), Auth: auth.New(auth.HashToken(accountToken), st)}
}

// newBus starts a bus on url with prefix, consuming with the core's catalog,
// publishing the core's events; stopped at cleanup.
func newBus(t testing.TB, c *core, url, prefix string, tweak func(*bus.Config)) *bus.Bus {
	t.Helper()
	cfg := bus.Config{URL: url, Prefix: prefix, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, MaxDeliver: 3}
	if tweak != nil {
		tweak(&cfg)
	}
	var exec bus.Executor
	if c != nil {
		exec = c.Catalog
	}
	var authn bus.Authenticator
	if c != nil {
		authn = c.Auth
	}
	b, err := bus.New(cfg, exec, authn, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	if c != nil {
		c.Recorder.AddPublisher(b)
	}
	return b
}

// trigger builds a trigger message.
func trigger(subject, token, msgID string, body any) *nats.Msg {
	m := nats.NewMsg(subject)
	switch b := body.(type) {
	case string:
		m.Data = []byte(b)
	default:
		m.Data, _ = json.Marshal(b)
	}
	if token != "" {
		m.Header.Set("token", token)
	}
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	return m
}

// subscribe collects core NATS messages on subject into a channel.
func subscribe(t testing.TB, nc *nats.Conn, subject string) chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	nc.Flush()
	return ch
}

// waitMsg returns the next message or fails after the timeout.
func waitMsg(t testing.TB, ch chan *nats.Msg, what string) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func sandboxCount(t testing.TB, st *store.Store, instance string) int {
	t.Helper()
	n, err := st.SandboxStatusCount(context.Background(), instance)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// triggersDrained reports whether the triggers stream holds nothing and the
// consumer has nothing pending or unacknowledged.
func triggersDrained(t testing.TB, js jetstream.JetStream, prefix string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := bus.Subjects{Prefix: prefix}
	c, err := js.Consumer(ctx, s.TriggersStream(), bus.TriggerDurable)
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return false
	}
	st, err := js.Stream(ctx, s.TriggersStream())
	if err != nil {
		return false
	}
	si, err := st.Info(ctx)
	if err != nil {
		return false
	}
	return ci.NumPending == 0 && ci.NumAckPending == 0 && si.State.Msgs == 0
}

// textsOf returns the text of every sandbox status of an instance (the
// recorded message's extendedTextMessage.text).
func textsOf(t testing.TB, st *store.Store, instance string) []string {
	t.Helper()
	list, err := st.SandboxStatusList(context.Background(), instance, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		m, err := whatsapp.RecordedMessage(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.GetExtendedTextMessage().GetText()+m.GetConversation())
	}
	return out
}
