package cluster_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/cluster"
	"github.com/statusflow/statusflow/internal/natstest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// startNATS runs a JetStream server on a free loopback port for the test.
func startNATS(t *testing.T) string {
	t.Helper()
	return natstest.Start(t, "", "")
}

// jetStream connects to url for the test.
func jetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func replica(t *testing.T, url, id string, ttl time.Duration, now func() time.Time) *cluster.Leases {
	t.Helper()
	l, err := cluster.New(context.Background(), jetStream(t, url), cluster.Config{Replica: id, TTL: ttl, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLeases(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	ctx := context.Background()
	const ttl = time.Second

	t.Run("OneOwnerAtATime", func(t *testing.T) {
		a, b := replica(t, url, "a", ttl, nil), replica(t, url, "b", ttl, nil)
		le, err := a.Acquire(ctx, "one owner/ünïcode")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Acquire(ctx, "one owner/ünïcode"); !errors.Is(err, cluster.ErrOwnedElsewhere) {
			t.Fatalf("second replica: %v, want ErrOwnedElsewhere", err)
		}
		renewed, err := a.Renew(ctx, "one owner/ünïcode")
		if err != nil || renewed.Generation != le.Generation || renewed.Revision <= le.Revision {
			t.Fatalf("renew: %+v %v (was %+v)", renewed, err, le)
		}
		if !a.Valid("one owner/ünïcode", le.Generation) || b.Valid("one owner/ünïcode", le.Generation) {
			t.Fatal("only the owner's lease is valid")
		}
		owners, err := b.Owners(ctx)
		if err != nil || owners["one owner/ünïcode"] != "a" {
			t.Fatalf("owners: %v %v", owners, err)
		}
		// Release hands it over at once, without waiting for the TTL.
		if err := a.Release(ctx, "one owner/ünïcode"); err != nil {
			t.Fatal(err)
		}
		if a.Valid("one owner/ünïcode", le.Generation) {
			t.Fatal("released lease still valid")
		}
		if _, err := b.Acquire(ctx, "one owner/ünïcode"); err != nil {
			t.Fatalf("after release: %v", err)
		}
	})

	t.Run("DeadOwnerLapsesAndIsFenced", func(t *testing.T) {
		a, b := replica(t, url, "a", ttl, nil), replica(t, url, "b", ttl, nil)
		le, err := a.Acquire(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		// a stops renewing (it died, or lost NATS). b takes over once the
		// server has expired the lease, and not before.
		start := time.Now()
		var got cluster.Lease
		for {
			if got, err = b.Acquire(ctx, "x"); err == nil {
				break
			}
			if !errors.Is(err, cluster.ErrOwnedElsewhere) {
				t.Fatal(err)
			}
			if time.Since(start) > 10*ttl {
				t.Fatal("the dead owner's lease never lapsed")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got.Generation == le.Generation {
			t.Fatal("a new owner got the old generation")
		}
		// a's view lapsed by its own clock before b could take over...
		if a.Valid("x", le.Generation) {
			t.Fatal("the old owner still believes it holds the lease")
		}
		// ...and the server refuses its late renewal (fencing).
		if _, err := a.Renew(ctx, "x"); !errors.Is(err, cluster.ErrLeaseLost) {
			t.Fatalf("late renewal: %v, want ErrLeaseLost", err)
		}
		if owner, _, _ := b.Owner(ctx, "x"); owner != "b" {
			t.Fatalf("owner %q after the late renewal, want b", owner)
		}
	})

	t.Run("CutOffOwnerStopsBeforeTheTTL", func(t *testing.T) {
		var skew atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		a := replica(t, url, "a", ttl, clock)
		le, err := a.Acquire(ctx, "y")
		if err != nil {
			t.Fatal(err)
		}
		if !a.Valid("y", le.Generation) {
			t.Fatal("fresh lease invalid")
		}
		skew.Store(int64(ttl)) // no renewal for a TTL: sends must stop
		if a.Valid("y", le.Generation) {
			t.Fatal("lease still valid a TTL after its last renewal")
		}
		if lost, _ := a.RenewAll(ctx); len(lost) != 0 {
			// Renewal itself still reaches the server here: the lease is ours.
			t.Fatalf("lost %v", lost)
		}
	})

	t.Run("ConcurrentAcquireHasOneWinner", func(t *testing.T) {
		// Its own server and a TTL no stall can outlast: with the shared
		// 1 s TTL, a replica still being set up under load (CI, load 34)
		// tried after the winner's lease had rightly expired, and won too.
		// All replicas exist before any tries, and they try together.
		url := startNATS(t)
		var rs []*cluster.Leases
		for i := range 5 {
			rs = append(rs, replica(t, url, fmt.Sprint("r", i), time.Minute, nil))
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := r.Acquire(ctx, "contended"); err == nil {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d replicas acquired one lease", wins.Load())
		}
	})
}

// A lease this replica let lapse because NATS did not answer its renewals
// (a NATS node crashed and the lease bucket was electing a leader) is taken
// back at once, under a new generation, when the key is still at the
// revision this replica last wrote; not when anyone else wrote it since.
func TestLeases_RetakeAfterUnansweredRenewals(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	ctx := context.Background()
	const ttl = time.Minute // the server's expiry never happens during the test
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a := replica(t, url, "a", ttl, clock)
	b := replica(t, url, "b", ttl, nil)
	var changes []string
	a.SetOnChange(func(instance, change string) { changes = append(changes, instance+" "+change) })

	for _, inst := range []string{"margin", "lapsed", "overwritten"} {
		if _, err := a.Acquire(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := a.Held("margin")

	// Within the margin (renewals unanswered for 3/4 of the TTL): the
	// session closes (Held is false) but the lease is still in hand.
	skew.Store(int64(ttl * 8 / 10))
	if _, ok := a.Held("margin"); ok {
		t.Fatal("a lease within its margin still counts")
	}
	le, err := a.Acquire(ctx, "margin")
	if err != nil {
		t.Fatalf("take back a lease within its margin: %v", err)
	}
	if le.Generation == first.Generation || !a.Valid("margin", le.Generation) || a.Valid("margin", first.Generation) {
		t.Fatalf("taken back as %+v (first %+v): want a new generation, the old one fenced", le, first)
	}

	// Past the deadline with NATS not answering: RenewAll gives the leases
	// up (their sessions close) and reports the failure.
	skew.Store(int64(ttl * 11 / 10))
	dead, cancel := context.WithCancel(ctx)
	cancel()
	lost, failed := a.RenewAll(dead)
	if !failed || len(lost) != 2 {
		t.Fatalf("RenewAll without NATS: lost %v failed %v; want lapsed, overwritten", lost, failed)
	}
	if _, err := a.Acquire(dead, "lapsed"); err == nil {
		t.Fatal("acquire without NATS succeeded")
	}
	if _, err := a.Gate().Acquire(dead, "lapsed"); !errors.Is(err, whatsapp.ErrNotConnected) {
		t.Fatalf("gate without NATS: %v, want whatsapp.ErrNotConnected (a 503 gap, not a 500)", err)
	}

	// Someone else wrote "overwritten" meanwhile (here: the same value, a
	// newer revision, as a restarted "a" would): not ours to take back.
	kv := bucket(t, url)
	e, err := kv.Get(ctx, keyOf("overwritten"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, keyOf("overwritten"), []byte("a"), e.Revision()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(ctx, "overwritten"); !errors.Is(err, cluster.ErrOwnedElsewhere) {
		t.Fatalf("take back a lease someone wrote since: %v, want ErrOwnedElsewhere", err)
	}
	le, err = a.Acquire(ctx, "lapsed")
	if err != nil {
		t.Fatalf("take back a lapsed lease nobody wrote since: %v", err)
	}
	if !a.Valid("lapsed", le.Generation) {
		t.Fatal("taken-back lease not valid")
	}
	if _, err := b.Acquire(ctx, "lapsed"); !errors.Is(err, cluster.ErrOwnedElsewhere) {
		t.Fatalf("other replica after the take-back: %v", err)
	}
	t.Log(changes)
}

func keyOf(instance string) string {
	return "i." + base64.RawURLEncoding.EncodeToString([]byte(instance))
}

func bucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	kv, err := jetStream(t, url).KeyValue(context.Background(), cluster.BucketDefault)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}
