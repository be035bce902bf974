package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/bus"
)

// BenchmarkBus_Triggers measures, on one embedded server, triggers consumed
// and published as status.published events per second on the sandbox
// engine, against a bare JetStream loop (async publish to a work-queue
// stream, pull-consume and ack), and reports the ratio (target ≥ 0.05).
//
//	go test -run '^$' -bench BenchmarkBus_Triggers -benchtime 2000x ./internal/bus/
func BenchmarkBus_Triggers(b *testing.B) {
	b.Run("Idempotency", func(b *testing.B) { benchTriggers(b, true) })
	// Without the idempotency store: what the bus and the rest of the core cost.
	b.Run("NoIdempotency", func(b *testing.B) { benchTriggers(b, false) })
}

func benchTriggers(b *testing.B, idempotency bool) {
	srv := startServer(b)
	nc, js := connect(b, srv.URL())
	n := max(b.N, 100)

	bare := bareLoop(b, js, n)

	c := newCoreWith(b, idempotency)
	prefix := uniquePrefix()
	newBus(b, c, srv.URL(), prefix, nil)
	done := make(chan struct{})
	got := 0
	sub, err := nc.Subscribe(prefix+".events.sales.status.published", func(*nats.Msg) {
		got++
		if got == n {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	subject := bus.Subjects{Prefix: prefix}.Trigger("status.publish", "sales")

	b.ResetTimer()
	start := time.Now()
	for i := range n {
		m := trigger(subject, instanceToken, fmt.Sprintf("bench-%d", i), `{"type":"text","message":"bench"}`)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d events", got, n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	flow := float64(n) / elapsed.Seconds()
	if cnt := sandboxCount(b, c.Store, "sales"); cnt != n {
		b.Fatalf("sandbox has %d statuses, want %d", cnt, n)
	}
	b.ReportMetric(bare, "bare-msgs/s")
	b.ReportMetric(flow, "triggers/s")
	b.ReportMetric(flow/bare, "ratio")
	b.Logf("n=%d: bare JetStream %.0f msgs/s, statusflow triggers→events %.0f/s, ratio %.3f (target ≥ 0.05)", n, bare, flow, flow/bare)
}

// bareLoop publishes n messages asynchronously to a work-queue stream and
// pull-consumes and acks them; it returns messages per second.
func bareLoop(b *testing.B, js jetstream.JetStream, n int) float64 {
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BARE", Subjects: []string{"bare.>"}, Retention: jetstream.WorkQueuePolicy, Duplicates: 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "BARE", jetstream.ConsumerConfig{Durable: "bare", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	got := 0
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		m.Ack()
		got++
		if got == n {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	for i := range n {
		m := nats.NewMsg("bare.x")
		m.Data = []byte(`{"type":"text","message":"bench"}`)
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("bare-%d", i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("bare loop: %d of %d", got, n)
	}
	return float64(n) / time.Since(start).Seconds()
}
