package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/nodes"
)

type testBundle struct {
	core   *core
	nc     *nats.Conn
	js     jetstream.JetStream
	prefix string
	subj   bus.Subjects
	events chan *nats.Msg
	dlq    chan *nats.Msg
}

// setupOn starts a core and a bus on the server at url with a fresh prefix.
func setupOn(t *testing.T, url string, tweak func(*bus.Config)) (*bus.Bus, *testBundle) {
	t.Helper()
	c := newCore(t)
	prefix := uniquePrefix()
	nc, js := connect(t, url)
	tb := &testBundle{core: c, nc: nc, js: js, prefix: prefix, subj: bus.Subjects{Prefix: prefix}}
	tb.events = subscribe(t, nc, prefix+".events.>")
	tb.dlq = subscribe(t, nc, prefix+".dlq.>")
	b := newBus(t, c, url, prefix, tweak)
	return b, tb
}

func setup(t *testing.T) (*bus.Bus, *testBundle) {
	t.Helper()
	return setupOn(t, startServer(t).URL(), nil)
}

func publish(t *testing.T, js jetstream.JetStream, m *nats.Msg) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatalf("publish %s: %v", m.Subject, err)
	}
	return ack
}

// waitEvent returns the next event of the given type, skipping others
// (instance.state).
func waitEvent(t *testing.T, ch chan *nats.Msg, typ string) (*nats.Msg, events.CloudEvent) {
	t.Helper()
	for {
		m := waitMsg(t, ch, typ+" event")
		var ce events.CloudEvent
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatalf("event is not JSON: %v: %s", err, m.Data)
		}
		if ce.Type == typ {
			return m, ce
		}
	}
}

func TestBus_Trigger(t *testing.T) {
	t.Parallel()
	srv := startServer(t)

	t.Run("PublishTextWithTraceAndOrigin", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		tc := tracing.New()
		m := trigger(tb.subj.Trigger("status.publish", "sales"), instanceToken, "pub-1",
			map[string]any{"input": map[string]any{"type": "text", "message": "hello from nats"},
				"origin": map[string]any{"workflowId": "wf-1", "executionId": "ex-1"}})
		m.Header.Set("traceparent", tc.String())
		publish(t, tb.js, m)

		em, ce := waitEvent(t, tb.events, status.EventStatusPublished)
		if em.Subject != tb.prefix+".events.sales.status.published" {
			t.Errorf("event subject = %s", em.Subject)
		}
		got, ok := tracing.Parse(em.Header.Get("traceparent"))
		if !ok || got.TraceID != tc.TraceID {
			t.Errorf("event traceparent header = %q, want trace %s", em.Header.Get("traceparent"), tc.TraceID)
		}
		if p, _ := tracing.Parse(ce.TraceParent); p.TraceID != tc.TraceID {
			t.Errorf("cloud event traceparent = %q", ce.TraceParent)
		}
		if ce.Origin.Platform != "nats" || ce.Origin.WorkflowID != "wf-1" || ce.Origin.ExecutionID != "ex-1" {
			t.Errorf("origin = %+v, want platform nats and the workflow", ce.Origin)
		}
		// The event id is in the body; no Nats-Msg-Id (see Bus.PublishEvent).
		if em.Header.Get(nats.MsgIdHdr) != "" || ce.ID == "" || ce.SpecVersion != "1.0" {
			t.Errorf("Nats-Msg-Id %q, id %q, specversion %q", em.Header.Get(nats.MsgIdHdr), ce.ID, ce.SpecVersion)
		}
		if n := sandboxCount(t, tb.core.Store, "sales"); n != 1 {
			t.Errorf("sandbox has %d statuses, want 1", n)
		}
		eventually(t, 5*time.Second, "triggers drained", func() bool { return triggersDrained(t, tb.js, tb.prefix) })
	})

	t.Run("DeleteAfterPublish", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		publish(t, tb.js, trigger(tb.subj.Trigger("status.publish", "sales"), accountToken, "", map[string]any{"input": map[string]any{"type": "text", "message": "to delete"}}))
		_, ce := waitEvent(t, tb.events, status.EventStatusPublished)
		var data status.PublishedData
		json.Unmarshal(ce.Data, &data)

		publish(t, tb.js, trigger(tb.subj.Trigger("status.delete", "sales"), instanceToken, "", map[string]any{"input": map[string]any{"messageId": data.MessageID, "deleteForEveryone": true}}))
		_, de := waitEvent(t, tb.events, status.EventStatusDeleted)
		var dd status.DeletedData
		json.Unmarshal(de.Data, &dd)
		if dd.MessageID != data.MessageID || dd.DeleteType != "revoke" || de.Origin.Platform != "nats" {
			t.Errorf("deleted event = %+v origin %+v", dd, de.Origin)
		}
		list, _ := tb.core.Store.SandboxStatusList(context.Background(), "sales", 10)
		if len(list) != 1 || !list[0].Revoked {
			t.Errorf("sandbox statuses = %+v, want one revoked", list)
		}
	})

	t.Run("BareInput", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		publish(t, tb.js, trigger(tb.subj.Trigger("status.publish", "sales"), instanceToken, "", `{"type":"text","message":"bare","source":"crm"}`))
		_, ce := waitEvent(t, tb.events, status.EventStatusPublished)
		var data status.PublishedData
		json.Unmarshal(ce.Data, &data)
		if data.Source != "crm" || ce.Origin.Platform != "nats" {
			t.Errorf("data %+v origin %+v", data, ce.Origin)
		}
	})

	t.Run("DuplicateMsgIDPublishesOnce", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		for range 3 {
			publish(t, tb.js, trigger(tb.subj.Trigger("status.publish", "sales"), instanceToken, "same-id", map[string]any{"input": map[string]any{"type": "text", "message": "once"}}))
		}
		waitEvent(t, tb.events, status.EventStatusPublished)
		eventually(t, 5*time.Second, "triggers drained", func() bool { return triggersDrained(t, tb.js, tb.prefix) })
		// A later trigger with the same id, after JetStream's copy is gone,
		// is a replay in the core's idempotency.
		publish(t, tb.js, trigger(tb.subj.Trigger("status.publish", "sales"), instanceToken, "same-id", map[string]any{"input": map[string]any{"type": "text", "message": "once"}}))
		eventually(t, 5*time.Second, "triggers drained", func() bool { return triggersDrained(t, tb.js, tb.prefix) })
		if n := sandboxCount(t, tb.core.Store, "sales"); n != 1 {
			t.Errorf("sandbox has %d statuses, want 1", n)
		}
	})
}

func TestBus_DeadLetter(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	text := map[string]any{"input": map[string]any{"type": "text", "message": "hi"}}
	tests := []struct {
		name       string
		node, inst string
		token      string
		body       any
		wantStatus string
		wantReason string
	}{
		{"MissingToken", "status.publish", "sales", "", text, bus.DLQStatusUnauthorized, "Missing token"},
		{"InvalidToken", "status.publish", "sales", "sfi_nope-nope-nope-nope", text, bus.DLQStatusUnauthorized, "Invalid token"},
		{"InstanceTokenOnOtherInstance", "status.publish", "other", instanceToken, text, bus.DLQStatusForbidden, "Instance token does not match this instance"},
		{"MalformedJSON", "status.publish", "sales", instanceToken, `{"input":`, string(errcode.CodeInvalid), "Invalid request body"},
		{"InvalidInput", "status.publish", "sales", instanceToken, map[string]any{"input": map[string]any{"type": "gif"}}, string(errcode.CodeInvalid), "Type must be one of: text, image, video, audio"},
		{"MissingMessage", "status.publish", "sales", instanceToken, map[string]any{"input": map[string]any{"type": "text"}}, string(errcode.CodeInvalid), "Message is required"},
		{"UnknownInstance", "status.publish", "ghost", accountToken, text, string(errcode.CodeInstanceNotFound), "Instance not found"},
		{"UnknownNode", "status.nope", "sales", instanceToken, text, string(errcode.CodeNodeNotFound), "Node not found"},
		{"TriggerNodeNotExecutable", "status.published", "sales", instanceToken, text, string(errcode.CodeInvalid), "is a trigger"},
		{"BodyInstanceMismatch", "status.publish", "sales", instanceToken, map[string]any{"instance": "other", "input": map[string]any{"type": "text", "message": "x"}}, string(errcode.CodeInvalid), "does not match"},
		{"ForgedEnqueueSignature", "status.publish", "sales", "", text, bus.DLQStatusUnauthorized, "Invalid token"},
		// Issue 13: NUL characters and invalid UTF-8 are refused at this door too.
		{"NULInInput", "status.publish", "sales", instanceToken, `{"input":{"type":"text","message":"a\u0000b"}}`, string(errcode.CodeInvalid), "NUL characters"},
		{"NULInBareInput", "status.publish", "sales", instanceToken, `{"type":"text","message":"hi","source":"\u0000"}`, string(errcode.CodeInvalid), "NUL characters"},
		{"NULInOrigin", "status.publish", "sales", instanceToken, `{"input":{"type":"text","message":"a"},"origin":{"workflowId":"\u0000"}}`, string(errcode.CodeInvalid), "NUL characters"},
		{"InvalidUTF8", "status.publish", "sales", instanceToken, "{\"input\":{\"type\":\"text\",\"message\":\"\xff\"}}", string(errcode.CodeInvalid), "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, tb := setupOn(t, srv.URL(), nil)
			m := trigger(tb.subj.Trigger(tt.node, tt.inst), tt.token, "dead-"+tt.name, tt.body)
			m.Header.Set("X-Custom", "kept")
			if tt.name == "ForgedEnqueueSignature" {
				m.Header.Set(bus.HeaderAuth, "v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			}
			publish(t, tb.js, m)
			d := waitMsg(t, tb.dlq, "DLQ message")
			if want := tb.subj.DLQ(tt.node, tt.inst); d.Subject != want {
				t.Errorf("DLQ subject = %s, want %s", d.Subject, want)
			}
			if got := d.Header.Get(bus.HeaderDLQStatus); got != tt.wantStatus {
				t.Errorf("%s = %q, want %q", bus.HeaderDLQStatus, got, tt.wantStatus)
			}
			if got := d.Header.Get(bus.HeaderDLQReason); !strings.Contains(got, tt.wantReason) {
				t.Errorf("%s = %q, want it to contain %q", bus.HeaderDLQReason, got, tt.wantReason)
			}
			if string(d.Data) != string(m.Data) {
				t.Errorf("DLQ payload = %s, want the trigger's %s", d.Data, m.Data)
			}
			if d.Header.Get("token") != "" || d.Header.Get(bus.HeaderAuth) != "" {
				t.Error("DLQ message carries the token")
			}
			if d.Header.Get("X-Custom") != "kept" || d.Header.Get(bus.HeaderDLQSubject) != m.Subject || d.Header.Get(bus.HeaderDLQDeliveries) != "1" {
				t.Errorf("DLQ headers = %v", d.Header)
			}
			eventually(t, 5*time.Second, "trigger terminated", func() bool { return triggersDrained(t, tb.js, tb.prefix) })
			if n := sandboxCount(t, tb.core.Store, "sales"); n != 0 {
				t.Errorf("sandbox has %d statuses, want 0", n)
			}
		})
	}
}

func TestBus_MaxDeliveries(t *testing.T) {
	t.Parallel()
	withJetStream(t, func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
		c := newCore(t)
		prefix := uniquePrefix()
		dlq := subscribe(t, nc, prefix+".dlq.>")
		calls := make(chan int, 10)
		n := 0
		flaky := bus.ExecutorFunc(func(ctx context.Context, nodeID string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error) {
			n++
			calls <- n
			return nil, errcode.ErrDisconnected
		})
		b, err := bus.New(bus.Config{URL: nc.ConnectedUrl(), Prefix: prefix, MaxDeliver: 3, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}, flaky, c.Auth, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer b.Stop(context.Background())
		publish(t, js, trigger(bus.Subjects{Prefix: prefix}.Trigger("status.publish", "sales"), instanceToken, "", `{"type":"text","message":"x"}`))
		d := waitMsg(t, dlq, "DLQ after max deliveries")
		if d.Header.Get(bus.HeaderDLQStatus) != bus.DLQStatusMaxDeliveries || d.Header.Get(bus.HeaderDLQDeliveries) != "3" ||
			!strings.Contains(d.Header.Get(bus.HeaderDLQReason), "not connected") {
			t.Errorf("DLQ headers = %v", d.Header)
		}
		if len(calls) != 3 {
			t.Errorf("executed %d times, want 3", len(calls))
		}
		eventually(t, 5*time.Second, "trigger terminated", func() bool { return triggersDrained(t, js, prefix) })
	})
}

func TestBus_RequestReply(t *testing.T) {
	t.Parallel()
	srv := startServer(t)

	t.Run("RequestSubjectGetsResult", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		m := trigger(tb.subj.Request("status.publish", "sales"), instanceToken, "req-1", map[string]any{"input": map[string]any{"type": "text", "message": "asked"}})
		tc := tracing.New()
		m.Header.Set("traceparent", tc.String())
		r, err := tb.nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Success bool          `json:"success"`
			TraceID string        `json:"traceId"`
			Output  status.Result `json:"output"`
		}
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatalf("%v: %s", err, r.Data)
		}
		if !got.Success || got.TraceID != tc.TraceID || got.Output.MessageID == "" || got.Output.Chat.JID != status.StatusBroadcastJID {
			t.Errorf("reply = %s", r.Data)
		}
		if n := sandboxCount(t, tb.core.Store, "sales"); n != 1 {
			t.Errorf("sandbox has %d statuses, want 1", n)
		}
	})

	t.Run("RequestErrorEnvelope", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		r, err := tb.nc.RequestMsg(trigger(tb.subj.Request("status.publish", "sales"), instanceToken, "", `{"input":{"type":"text"}}`), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Success bool `json:"success"`
			Error   struct {
				Message string `json:"message"`
				Status  string `json:"status"`
			} `json:"error"`
			TraceID string `json:"traceId"`
		}
		json.Unmarshal(r.Data, &got)
		if got.Success || got.Error.Message != "Message is required" || got.Error.Status != "" || len(got.TraceID) != 32 {
			t.Errorf("reply = %s", r.Data)
		}
		waitMsg(t, tb.dlq, "DLQ copy of the failed request")
	})

	t.Run("ReplyToHeaderOnJetStreamTrigger", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		inbox := nats.NewInbox()
		replies := subscribe(t, tb.nc, inbox)
		m := trigger(tb.subj.Trigger("status.publish", "sales"), instanceToken, "", `{"type":"text","message":"reply please"}`)
		m.Header.Set(bus.HeaderReplyTo, inbox)
		publish(t, tb.js, m)
		r := waitMsg(t, replies, "reply")
		if !strings.Contains(string(r.Data), `"success":true`) {
			t.Errorf("reply = %s", r.Data)
		}
	})

	t.Run("DuplicateRequestAnsweredAtOnce", func(t *testing.T) {
		t.Parallel()
		_, tb := setupOn(t, srv.URL(), nil)
		body := `{"type":"text","message":"dup"}`
		if _, err := tb.nc.RequestMsg(trigger(tb.subj.Request("status.publish", "sales"), instanceToken, "dup-req", body), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		r, err := tb.nc.RequestMsg(trigger(tb.subj.Request("status.publish", "sales"), instanceToken, "dup-req", body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r.Data), `"status":"duplicate"`) {
			t.Errorf("reply = %s", r.Data)
		}
	})
}

func TestBus_Enqueue(t *testing.T) {
	t.Parallel()
	b, tb := setup(t)
	id := status.NewMessageID()
	tc := tracing.New()
	err := b.Enqueue(context.Background(), "status.publish", nodes.ExecuteRequest{
		Instance: "sales", Input: json.RawMessage(`{"type":"text","message":"async"}`),
		Origin: status.Origin{Platform: "http", Source: "crm"}, TraceParent: tc.String(), MessageID: id,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, ce := waitEvent(t, tb.events, status.EventStatusPublished)
	var data status.PublishedData
	json.Unmarshal(ce.Data, &data)
	if data.MessageID != id || data.TraceID != tc.TraceID || ce.Origin.Platform != "http" {
		t.Errorf("event data %+v origin %+v; want message %s trace %s", data, ce.Origin, id, tc.TraceID)
	}

	t.Run("TamperedPayloadIsRefused", func(t *testing.T) {
		// Copy a signed trigger's headers onto another body: the signature no longer matches.
		raw := nats.NewMsg(tb.subj.Trigger("status.publish", "sales"))
		inbox := subscribe(t, tb.nc, tb.subj.Trigger("status.publish", "sales"))
		if err := b.Enqueue(context.Background(), "status.publish", nodes.ExecuteRequest{Instance: "sales", Input: json.RawMessage(`{"type":"text","message":"signed"}`), MessageID: status.NewMessageID()}); err != nil {
			t.Fatal(err)
		}
		signed := waitMsg(t, inbox, "signed trigger")
		raw.Header = signed.Header
		raw.Header.Set(nats.MsgIdHdr, "tampered")
		raw.Data = []byte(`{"input":{"type":"text","message":"tampered"}}`)
		publish(t, tb.js, raw)
		for {
			d := waitMsg(t, tb.dlq, "DLQ for tampered trigger")
			if d.Header.Get(bus.HeaderDLQStatus) == bus.DLQStatusUnauthorized {
				break
			}
		}
	})
}

func TestBus_EmbeddedServer(t *testing.T) {
	t.Parallel()
	c := newCore(t)
	// Hold a port so the configured listen address is taken.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := bus.New(bus.Config{DataDir: t.TempDir(), Listen: ln.Addr().String(), ClientUser: "client", ClientPassword: "client-password"}, c.Catalog, c.Auth, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(context.Background()); !errors.Is(err, bus.ErrNotStarted) {
		t.Errorf("Ready before Start = %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Recorder.AddPublisher(b)
	if url := b.ClientURL(); url == "" || strings.HasSuffix(url, ln.Addr().String()) {
		t.Errorf("ClientURL = %q, want a free port other than %s", url, ln.Addr())
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	nc, _ := connect(t, b.ClientURL(), nats.UserInfo("client", "client-password"))
	r, err := nc.RequestMsg(trigger("statusflow.request.status.publish.sales", instanceToken, "", `{"type":"text","message":"embedded"}`), 10*time.Second)
	if err != nil || !strings.Contains(string(r.Data), `"success":true`) {
		t.Fatalf("request = %v %v", r, err)
	}
	nc.Close()
	if err := b.Stop(context.Background()); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Errorf("second Stop = %v", err)
	}
	if err := b.Ready(context.Background()); !errors.Is(err, bus.ErrNotStarted) {
		t.Errorf("Ready after Stop = %v", err)
	}
}

// TestBus_SharedNATS runs triggers, the DLQ, request-reply and events against
// the machine's NATS at 127.0.0.1:4222 with a unique prefix, and deletes its
// streams afterwards.
func TestBus_SharedNATS(t *testing.T) {
	t.Parallel()
	const url = "nats://127.0.0.1:4222"
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		t.Skipf("the machine's NATS at %s is unreachable (%v); skipping the shared-server test", url, err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.AccountInfo(context.Background()); err != nil {
		nc.Close()
		t.Skipf("the machine's NATS at %s has no JetStream (%v); skipping", url, err)
	}
	nc.Close()
	b, tb := setupOn(t, url, nil)
	t.Cleanup(func() {
		b.Stop(context.Background())
		ctx := context.Background()
		for _, s := range []string{tb.subj.TriggersStream(), tb.subj.EventsStream(), tb.subj.DLQStream()} {
			tb.js.DeleteStream(ctx, s)
		}
	})

	tc := tracing.New()
	m := trigger(tb.subj.Trigger("status.publish", "sales"), instanceToken, "shared-1", map[string]any{"input": map[string]any{"type": "text", "message": "shared"}, "origin": map[string]any{"workflowId": "wf"}})
	m.Header.Set("traceparent", tc.String())
	publish(t, tb.js, m)
	em, ce := waitEvent(t, tb.events, status.EventStatusPublished)
	if p, _ := tracing.Parse(em.Header.Get("traceparent")); p.TraceID != tc.TraceID || ce.Origin.Platform != "nats" || ce.Origin.WorkflowID != "wf" {
		t.Errorf("event traceparent %q origin %+v", em.Header.Get("traceparent"), ce.Origin)
	}

	publish(t, tb.js, trigger(tb.subj.Trigger("status.publish", "sales"), "wrong-token-wrong-token", "", `{"type":"text","message":"x"}`))
	d := waitMsg(t, tb.dlq, "DLQ")
	if d.Header.Get(bus.HeaderDLQStatus) != bus.DLQStatusUnauthorized {
		t.Errorf("DLQ headers %v", d.Header)
	}

	r, err := tb.nc.RequestMsg(trigger(tb.subj.Request("status.delete", "sales"), instanceToken, "", map[string]any{"input": map[string]any{"messageId": "3EB0NOPE"}}), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Data), `"message":"message not found"`) {
		t.Errorf("reply = %s", r.Data)
	}
	if n := sandboxCount(t, tb.core.Store, "sales"); n != 1 {
		t.Errorf("sandbox has %d statuses, want 1", n)
	}
}
