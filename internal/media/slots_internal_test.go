package media

import (
	"context"
	"testing"
	"time"
)

// TestSlots_PerInstanceShare: one instance holding its whole share waits for
// its own slots while another instance still gets a free one at once.
func TestSlots_PerInstanceShare(t *testing.T) {
	t.Parallel()
	s := newSlots(2, 1)
	ctx := context.Background()
	relA, err := s.acquire(ctx, "heavy")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		rel, err := s.acquire(ctx, "heavy") // waits: heavy's share is used
		if err == nil {
			got <- rel
		}
	}()
	relB, err := s.acquire(ctx, "light") // a shared slot is still free
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		t.Fatal("a second slot went to the instance that already held its share")
	default:
	}
	relB()
	relA()
	select {
	case rel := <-got:
		rel()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request never got its slot back")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	relA, _ = s.acquire(ctx, "heavy")
	if _, err := s.acquire(cctx, "heavy"); err == nil {
		t.Fatal("a cancelled wait returned a slot")
	}
	relA()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byKey) != 0 {
		t.Fatalf("per-instance entries left: %v", s.byKey)
	}
}
