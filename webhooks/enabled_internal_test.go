package webhooks

import (
	"context"
	"database/sql"
	"testing"

	"github.com/statusflow/statusflow/internal/store"
)

func TestEnabledHooks_List(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// counting is a store read that counts its calls and can run a change
	// while it reads, as another request would.
	type counting struct {
		reads  int
		during func()
	}
	read := func(c *counting) func(context.Context, *sql.Tx, string) ([]*store.Webhook, error) {
		return func(context.Context, *sql.Tx, string) ([]*store.Webhook, error) {
			c.reads++
			if c.during != nil {
				c.during()
			}
			return []*store.Webhook{{ID: "wh1"}}, nil
		}
	}
	list := func(t *testing.T, h *enabledHooks, c *counting) {
		t.Helper()
		ws, err := h.list(ctx, nil, "sales", read(c))
		if err != nil || len(ws) != 1 {
			t.Fatalf("list: %v %v", ws, err)
		}
	}

	t.Run("KeptBetweenEvents", func(t *testing.T) {
		t.Parallel()
		h, c := newEnabledHooks(true), &counting{}
		list(t, h, c)
		list(t, h, c)
		if c.reads != 1 {
			t.Fatalf("%d reads, want 1", c.reads)
		}
	})

	t.Run("OffForASharedDatabase", func(t *testing.T) {
		t.Parallel()
		h, c := newEnabledHooks(false), &counting{}
		list(t, h, c)
		list(t, h, c)
		if c.reads != 2 {
			t.Fatalf("%d reads, want 2", c.reads)
		}
		h.change()() // harmless when off
	})

	t.Run("ForgottenOnChange", func(t *testing.T) {
		t.Parallel()
		h, c := newEnabledHooks(true), &counting{}
		list(t, h, c)
		h.change()()
		list(t, h, c)
		if c.reads != 2 {
			t.Fatalf("%d reads, want 2", c.reads)
		}
	})

	t.Run("NothingKeptWhileAChangeIsInFlight", func(t *testing.T) {
		t.Parallel()
		// What an event reads while a change is uncommitted (maybe in its
		// own batch, which may roll back) must not outlive the read.
		h, c := newEnabledHooks(true), &counting{}
		done := h.change()
		list(t, h, c)
		list(t, h, c)
		if c.reads != 2 {
			t.Fatalf("%d reads during a change, want 2", c.reads)
		}
		done()
		done() // a second call is harmless
		list(t, h, c)
		list(t, h, c)
		if c.reads != 3 {
			t.Fatalf("%d reads after the change, want 3", c.reads)
		}
	})

	t.Run("ReadOverlappingAChangeNotKept", func(t *testing.T) {
		t.Parallel()
		// A read that began before a change and returns after it committed
		// may hold the old webhooks: it is used once, not kept.
		h, c := newEnabledHooks(true), &counting{}
		c.during = func() { h.change()() }
		list(t, h, c)
		c.during = nil
		list(t, h, c)
		if c.reads != 2 {
			t.Fatalf("%d reads, want 2", c.reads)
		}
	})
}
