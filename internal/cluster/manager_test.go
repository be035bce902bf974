package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// Two replicas' instance managers on one PostgreSQL database and one NATS
// server. Every instance opens on exactly one replica; the other answers
// "not connected" without sending. When the owner dies (stops renewing, no
// release: kill -9), the survivor takes every instance over within the
// bound, and the dead owner's sessions are fenced: they never send again.
func TestManager_OwnershipAndFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := startNATS(t)
	st := storetest.New(t, store.Postgres)
	const ttl = 2 * time.Second
	log := slog.New(slog.DiscardHandler)
	la, lb := replica(t, url, "a", ttl, nil), replica(t, url, "b", ttl, nil)
	// a renews in the background, as a live replica does, until it "dies".
	actx, kill := context.WithCancel(ctx)
	aDone := make(chan struct{})
	go func() { defer close(aDone); la.Run(actx, nil) }()
	t.Cleanup(func() { kill(); <-aDone })
	// b renews too, as a live replica does (a lease stops counting a
	// quarter TTL before its deadline).
	bctx, stopB := context.WithCancel(ctx)
	bDone := make(chan struct{})
	go func() { defer close(bDone); lb.Run(bctx, nil) }()
	t.Cleanup(func() { stopB(); <-bDone })
	ma := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	ma.SetGate(la.Gate())
	mb := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	mb.SetGate(lb.Gate())
	t.Cleanup(func() { ma.Stop(ctx) })
	t.Cleanup(func() { mb.Stop(ctx) })

	msg, err := whatsapp.BuildText(whatsapp.TextStatus{Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprint("inst", i)
		if _, _, err := ma.Create(ctx, names[i], whatsapp.EngineSandbox, "h"+names[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if opened, _ := mb.Reconcile(ctx); opened != 0 {
		t.Fatalf("b opened %d instances a holds", opened)
	}
	for _, name := range names {
		sb, err := mb.Session(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if sb.State() == whatsapp.StateConnected {
			t.Fatalf("%s: connected on the replica that does not own it", name)
		}
		if _, err := sb.SendStatus(ctx, "X"+name, msg); !errors.Is(err, whatsapp.ErrNotOwner) || !errors.Is(err, whatsapp.ErrNotConnected) {
			t.Fatalf("%s: send on the non-owner: %v", name, err)
		}
		sa, _ := ma.Session(ctx, name)
		if _, err := sa.SendStatus(ctx, "A1"+name, msg); err != nil {
			t.Fatalf("%s: send on the owner: %v", name, err)
		}
	}
	// While a lives, b finds nothing to take.
	for range 3 {
		time.Sleep(ttl / 3)
		if opened, _ := mb.Reconcile(ctx); opened != 0 {
			t.Fatalf("b took %d instances from a live owner", opened)
		}
	}
	// a dies: no renewal, no release (kill -9).
	kill()
	<-aDone
	sessA := map[string]whatsapp.Session{}
	for _, name := range names {
		sessA[name], _ = ma.Session(ctx, name)
	}
	died := time.Now()
	taken := 0
	for taken < n {
		if time.Since(died) > 3*ttl {
			t.Fatalf("after %s b holds %d of %d instances (bound %s)", time.Since(died), taken, n, 4*ttl/3)
		}
		// Never both: whenever b holds one, a's session for it is fenced.
		for _, name := range names {
			_, a := la.Held(name)
			_, b := lb.Held(name)
			if a && b {
				t.Fatalf("%s valid on both replicas", name)
			}
		}
		o, _ := mb.Reconcile(ctx)
		taken += o
		time.Sleep(ttl / 10)
	}
	took := time.Since(died)
	for _, name := range names {
		if _, err := sessA[name].SendStatus(ctx, "A2"+name, msg); !errors.Is(err, whatsapp.ErrNotOwner) {
			t.Fatalf("%s: the dead owner's session sent after losing its lease: %v", name, err)
		}
		sb, _ := mb.Session(ctx, name)
		if _, err := sb.SendStatus(ctx, "B1"+name, msg); err != nil {
			t.Fatalf("%s: send on the new owner: %v", name, err)
		}
		// Exactly the sends that were allowed reached the engine.
		recs, err := st.SandboxStatusList(ctx, name, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.MessageID]++
		}
		for id, want := range map[string]int{"X" + name: 0, "A1" + name: 1, "A2" + name: 0, "B1" + name: 1} {
			if got[id] != want {
				t.Fatalf("%s: message %s recorded %d times, want %d", name, id, got[id], want)
			}
		}
	}
	t.Logf("failover: %d instances taken over %s after the owner died (TTL %s)", n, took.Round(time.Millisecond), ttl)
}
