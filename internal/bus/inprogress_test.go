package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/nodes"
)

// A trigger whose handling takes several AckWaits is delivered once: the
// consumer's InProgress (every AckWait/3, runner in handler.go) keeps the
// real JetStream server from redelivering it while it runs, and its status
// is published once. The executor is the real catalog behind a 3.5 s delay
// (a slow engine or media download); with AckWait 1 s, a missing InProgress
// would redeliver it about three times, each a second execution.
func TestBus_SlowTriggerInProgressNoRedelivery(t *testing.T) {
	t.Parallel()
	const slow = 3500 * time.Millisecond
	srv := startServer(t)
	c := newCore(t)
	prefix := uniquePrefix()
	nc, js := connect(t, srv.URL())
	subj := bus.Subjects{Prefix: prefix}
	evs := subscribe(t, nc, prefix+".events.>")

	var executions atomic.Int32
	exec := bus.ExecutorFunc(func(ctx context.Context, nodeID string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error) {
		executions.Add(1)
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return c.Catalog.Execute(ctx, nodeID, req)
	})
	b, err := bus.New(bus.Config{URL: srv.URL(), Prefix: prefix, AckWait: time.Second, MaxDeliver: 10,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}, exec, c.Auth, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	c.Recorder.AddPublisher(b)

	publish(t, js, trigger(subj.Trigger("status.publish", "sales"), instanceToken, "slow-1",
		map[string]any{"input": map[string]any{"type": "text", "message": "slow"}}))
	waitEvent(t, evs, status.EventStatusPublished)
	eventually(t, 5*time.Second, "triggers drained", func() bool { return triggersDrained(t, js, prefix) })

	if n := executions.Load(); n != 1 {
		t.Errorf("trigger executed %d times, want 1 (redelivered while running)", n)
	}
	if n := sandboxCount(t, c.Store, "sales"); n != 1 {
		t.Errorf("sandbox has %d statuses, want 1", n)
	}
	// No second status.published event arrives after the ack either.
	published := prefix + ".events.sales.status.published"
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case m := <-evs:
			if m.Subject == published {
				t.Errorf("second status.published event: %s", m.Data)
			}
			continue
		case <-quiet:
		}
		break
	}
}
