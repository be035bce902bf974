package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/natstest"
)

// A replica started together with its NATS cluster (the compose profile
// "cluster") may ask for its streams before JetStream has a quorum: Start
// keeps declaring them until the cluster answers instead of failing. Here two
// of three nodes are down when the bus starts (no meta leader, every
// JetStream request times out) and come back a few seconds later.
func TestBus_StartWaitsForJetStreamQuorum(t *testing.T) {
	cl := natstest.StartCluster(t, 3)
	cl.Nodes[1].Kill()
	cl.Nodes[2].Kill()

	b, err := bus.New(bus.Config{URL: cl.Nodes[0].URL, Prefix: "quorum", Replicas: 3, ConnectTimeout: time.Second},
		nil, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- b.Start(context.Background()) }()
	t.Cleanup(func() { b.Stop(context.Background()) })

	select {
	case err := <-started:
		t.Fatalf("Start returned before JetStream had a quorum: %v", err)
	case <-time.After(2 * time.Second): // at least one declare timed out
	}
	for _, n := range cl.Nodes[1:] {
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("Start after the quorum came back: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Start did not return after the quorum came back")
	}
}
