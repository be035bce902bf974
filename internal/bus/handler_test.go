package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/errcode"
)

// fakeMsg is a jetstream.Msg with fixed metadata that records acks.
type fakeMsg struct {
	subject   string
	data      []byte
	hdr       nats.Header
	delivered uint64
	acks      []string
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered, Stream: "SF_TRIGGERS", Sequence: jetstream.SequencePair{Stream: 42}}, nil
}
func (m *fakeMsg) Data() []byte                       { return m.data }
func (m *fakeMsg) Headers() nats.Header               { return m.hdr }
func (m *fakeMsg) Subject() string                    { return m.subject }
func (m *fakeMsg) Reply() string                      { return "" }
func (m *fakeMsg) Ack() error                         { m.acks = append(m.acks, "ack"); return nil }
func (m *fakeMsg) DoubleAck(context.Context) error    { m.acks = append(m.acks, "ack"); return nil }
func (m *fakeMsg) Nak() error                         { m.acks = append(m.acks, "nak"); return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error   { m.acks = append(m.acks, "nak"); return nil }
func (m *fakeMsg) InProgress() error                  { return nil }
func (m *fakeMsg) Term() error                        { m.acks = append(m.acks, "term"); return nil }
func (m *fakeMsg) TermWithReason(reason string) error { m.acks = append(m.acks, "term"); return nil }

// stubPublisher records DLQ publishes, failing when err is set.
type stubPublisher struct {
	msgs []*nats.Msg
	err  error
}

func (p *stubPublisher) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.msgs = append(p.msgs, m)
	return &jetstream.PubAck{}, nil
}

func newFakeMsg(delivered uint64) *fakeMsg {
	h := nats.Header{}
	h.Set("token", "secret")
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	return &fakeMsg{subject: "sf.trigger.status.publish.sales", data: []byte(`{"type":"text"}`), hdr: h, delivered: delivered}
}

func TestChain_Order(t *testing.T) {
	t.Parallel()
	var order []string
	mw := func(name string) bus.Middleware {
		return func(next bus.HandlerFunc) bus.HandlerFunc {
			return func(ctx context.Context, m jetstream.Msg) error {
				order = append(order, name)
				return next(ctx, m)
			}
		}
	}
	h := bus.Chain(func(context.Context, jetstream.Msg) error { order = append(order, "handler"); return nil }, mw("a"), mw("b"))
	h(context.Background(), newFakeMsg(1))
	if got := strings.Join(order, ","); got != "a,b,handler" {
		t.Errorf("order = %s, want a,b,handler", got)
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	err := bus.Recover(func(context.Context, jetstream.Msg) error { panic("boom") })(context.Background(), newFakeMsg(1))
	var pe *bus.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("err = %v", err)
	}
	if bus.IsPermanent(err) {
		t.Error("a panic is retried (bounded by MaxDeliver), not permanent")
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	err := bus.Timeout(10*time.Millisecond)(func(ctx context.Context, _ jetstream.Msg) error {
		<-ctx.Done()
		return ctx.Err()
	})(context.Background(), newFakeMsg(1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	dlqSubject := func(string) string { return "sf.dlq.status.publish.sales" }
	failWith := func(err error) bus.HandlerFunc {
		return func(context.Context, jetstream.Msg) error { return err }
	}

	t.Run("PermanentGoesToDLQ", func(t *testing.T) {
		t.Parallel()
		pub := &stubPublisher{}
		err := bus.DeadLetter(pub, dlqSubject, 5)(failWith(errcode.Errorf(errcode.CodeInvalid, "Message is required")))(context.Background(), newFakeMsg(1))
		var dead *bus.DeadLetteredError
		if !errors.As(err, &dead) || len(pub.msgs) != 1 {
			t.Fatalf("err = %v, published %d", err, len(pub.msgs))
		}
		m := pub.msgs[0]
		if m.Subject != "sf.dlq.status.publish.sales" || string(m.Data) != `{"type":"text"}` ||
			m.Header.Get(bus.HeaderDLQStatus) != "invalid_request" || m.Header.Get(bus.HeaderDLQReason) != "Message is required" ||
			m.Header.Get("token") != "" || m.Header.Get("traceparent") == "" || m.Header.Get(nats.MsgIdHdr) != "SF_TRIGGERS:42" {
			t.Errorf("DLQ message %s %s %v", m.Subject, m.Data, m.Header)
		}
	})

	t.Run("RetryableUnderLimitPassesThrough", func(t *testing.T) {
		t.Parallel()
		pub := &stubPublisher{}
		err := bus.DeadLetter(pub, dlqSubject, 5)(failWith(errcode.ErrDisconnected))(context.Background(), newFakeMsg(4))
		if !errors.Is(err, errcode.ErrDisconnected) || len(pub.msgs) != 0 {
			t.Errorf("err = %v, published %d", err, len(pub.msgs))
		}
	})

	t.Run("RetryableAtLimitGoesToDLQ", func(t *testing.T) {
		t.Parallel()
		pub := &stubPublisher{}
		err := bus.DeadLetter(pub, dlqSubject, 5)(failWith(errcode.ErrDisconnected))(context.Background(), newFakeMsg(5))
		var dead *bus.DeadLetteredError
		if !errors.As(err, &dead) || pub.msgs[0].Header.Get(bus.HeaderDLQStatus) != bus.DLQStatusMaxDeliveries {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("FailedDLQPublishIsJoinedAndNotTerminated", func(t *testing.T) {
		t.Parallel()
		pub := &stubPublisher{err: errors.New("nats down")}
		err := bus.DeadLetter(pub, dlqSubject, 5)(failWith(&bus.PermanentError{Code: "unauthorized", Message: "Invalid token"}))(context.Background(), newFakeMsg(1))
		var dead *bus.DeadLetteredError
		if errors.As(err, &dead) || !errors.Is(err, &bus.PermanentError{}) || !strings.Contains(err.Error(), "nats down") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("SuccessPublishesNothing", func(t *testing.T) {
		t.Parallel()
		pub := &stubPublisher{}
		if err := bus.DeadLetter(pub, dlqSubject, 5)(failWith(nil))(context.Background(), newFakeMsg(1)); err != nil || len(pub.msgs) != 0 {
			t.Errorf("err = %v, published %d", err, len(pub.msgs))
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := bus.Backoff(time.Second, 10*time.Second)
	tests := []struct {
		attempt  int
		expected time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}}
	for _, tt := range tests {
		got := b(tt.attempt)
		if lo, hi := tt.expected*8/10, tt.expected*12/10; got < lo || got > hi {
			t.Errorf("Backoff(%d) = %s, want %s ±20%%", tt.attempt, got, tt.expected)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		given     bus.Config
		withError string
	}{
		{"EmbeddedNeedsDataDir", bus.Config{}, "STATUSFLOW_DATA_DIR"},
		{"PrefixOneToken", bus.Config{DataDir: "x", Prefix: "a.b"}, "STATUSFLOW_NATS_PREFIX"},
		{"URLNeedsScheme", bus.Config{URL: "localhost:4222"}, "STATUSFLOW_NATS_URL"},
		{"ListenHostPort", bus.Config{DataDir: "x", Listen: "4222"}, "STATUSFLOW_NATS_LISTEN"},
		{"External", bus.Config{URL: "nats://127.0.0.1:4222"}, ""},
		{"Embedded", bus.Config{DataDir: "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.given.WithDefaults().Validate()
			if tt.withError == "" && err != nil || tt.withError != "" && (err == nil || !strings.Contains(err.Error(), tt.withError)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.withError)
			}
		})
	}
	if d := (bus.Config{}).WithDefaults(); d.Listen != bus.ListenDefault || d.Prefix != "statusflow" || d.DedupWindow != 24*time.Hour || d.MaxDeliver != 10 {
		t.Errorf("WithDefaults = %+v", d)
	}
}

func TestSubjects_ParseTrigger(t *testing.T) {
	t.Parallel()
	s := bus.Subjects{Prefix: "statusflow"}
	node, inst, ok := s.ParseTrigger("trigger", "statusflow.trigger.status.publish.sales")
	if !ok || node != "status.publish" || inst != "sales" {
		t.Errorf("got %q %q %v", node, inst, ok)
	}
	for _, bad := range []string{"statusflow.trigger.sales", "statusflow.trigger.", "other.trigger.a.b", "statusflow.events.a.b"} {
		if _, _, ok := s.ParseTrigger("trigger", bad); ok {
			t.Errorf("ParseTrigger(%q) ok", bad)
		}
	}
	if s.TriggersStream() != "STATUSFLOW_TRIGGERS" || s.DLQ("status.publish", "sales") != "statusflow.dlq.status.publish.sales" {
		t.Error("names")
	}
}
