package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// TestEmbedded_ClientsMustLogIn: the embedded server refuses anonymous
// clients; a logged-in external client may publish triggers and requests
// and read events and the DLQ (also through JetStream consumers), and may
// not read triggers or requests (their token headers), forge events, or
// purge or delete streams. statusflow's own pulled triggers never show on
// the _INBOX.> subjects external clients may read.
func TestEmbedded_ClientsMustLogIn(t *testing.T) {
	t.Parallel()
	c := newCore(t)
	b, err := bus.New(bus.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClientUser: "client", ClientPassword: "client-password"}, c.Catalog, c.Auth, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	c.Recorder.AddPublisher(b)
	url := b.ClientURL()

	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("client", "wrong"), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a wrong password connected")
	}

	var mu sync.Mutex
	var violations []string
	nc, js := connect(t, url, nats.UserInfo("client", "client-password"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err.Error())
			mu.Unlock()
		}))
	violated := func(what string) bool {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			for _, v := range violations {
				if strings.Contains(v, what) {
					mu.Unlock()
					return true
				}
			}
			mu.Unlock()
			nc.Flush()
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}

	// Reading triggers or requests is refused.
	for _, subj := range []string{"statusflow.trigger.>", "statusflow.request.>", "statusflow.>", ">"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		if !violated(`Subscription to "` + subj + `"`) {
			t.Errorf("subscribe %s: no permissions violation", subj)
		}
	}
	// Forging an event is refused.
	nc.Publish("statusflow.events.sales.status.published", []byte(`{"forged":true}`))
	if !violated(`Publish to "statusflow.events.sales.status.published"`) {
		t.Error("publishing an event: no permissions violation")
	}
	// The JetStream API of statusflow's streams is closed, except reading events and the DLQ.
	// A refused API call gets no answer: each waits out its own deadline.
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	if err := js.DeleteStream(short(), "STATUSFLOW_TRIGGERS"); err == nil {
		t.Error("deleted the triggers stream")
	}
	if s, err := js.Stream(short(), "STATUSFLOW_EVENTS"); err != nil {
		t.Errorf("events stream info: %v", err)
	} else if err := s.Purge(short()); err == nil {
		t.Error("purged the events stream")
	}
	if _, err := js.Stream(short(), "STATUSFLOW_TRIGGERS"); err == nil {
		t.Error("read the triggers stream's info")
	}

	// What a client may do works: events (core and JetStream), requests, triggers.
	events, err := nc.SubscribeSync("statusflow.events.sales.>")
	if err != nil {
		t.Fatal(err)
	}
	inboxes, err := nc.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	r, err := nc.RequestMsg(trigger("statusflow.request.status.publish.sales", instanceToken, "", `{"type":"text","message":"logged in"}`), 15*time.Second)
	if err != nil || !strings.Contains(string(r.Data), `"success":true`) {
		t.Fatalf("request = %v %v", r, err)
	}
	if _, err := js.PublishMsg(short(), trigger("statusflow.trigger.status.publish.sales", instanceToken, "auth-test-1", `{"type":"text","message":"durable"}`)); err != nil {
		t.Fatalf("publish a trigger: %v", err)
	}
	got := 0
	for got < 2 {
		m, err := events.NextMsg(15 * time.Second)
		if err != nil {
			t.Fatalf("events: %v after %d", err, got)
		}
		if strings.HasSuffix(m.Subject, ".status.published") {
			got++
		}
	}
	cons, err := js.OrderedConsumer(short(), "STATUSFLOW_EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer on the events stream: %v", err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("read the events stream: %v", err)
	}
	for {
		m, err := inboxes.NextMsg(200 * time.Millisecond)
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("token") != "" || bytes.Contains(m.Data, []byte("durable")) {
			t.Fatalf("an external client read a trigger on %s", m.Subject)
		}
	}
}

// TestEmbeddedCredentials_GeneratedOnce: with no password configured, one is
// generated, logged once, kept as a bcrypt hash, reused on the next start, and
// the server listens on loopback only.
func TestEmbeddedCredentials_GeneratedOnce(t *testing.T) {
	t.Parallel()
	st := storetest.New(t, store.SQLite)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	cfg, err := bus.EmbeddedCredentials(context.Background(), st, bus.Config{Listen: "0.0.0.0:4222"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:4222" {
		t.Errorf("listen = %s, want loopback", cfg.Listen)
	}
	if cfg.ClientUser != "statusflow" || !strings.HasPrefix(cfg.ClientPassword, "$2") {
		t.Fatalf("user %q, password %q: want statusflow and a bcrypt hash", cfg.ClientUser, cfg.ClientPassword)
	}
	if strings.Count(logs.String(), "natsPassword") != 1 {
		t.Fatalf("log: %s", logs.String())
	}
	again, err := bus.EmbeddedCredentials(context.Background(), st, bus.Config{}, log)
	if err != nil || again.ClientPassword != cfg.ClientPassword || strings.Count(logs.String(), "natsPassword") != 1 {
		t.Fatalf("second start: %v %q, log %s", err, again.ClientPassword, logs.String())
	}
	set, err := bus.EmbeddedCredentials(context.Background(), st, bus.Config{Listen: "0.0.0.0:4222", ClientPassword: "mine"}, log)
	if err != nil || set.ClientPassword != "mine" || set.Listen != "0.0.0.0:4222" {
		t.Fatalf("configured password: %+v %v", set, err)
	}
}
