package webhooks

import (
	"context"
	"database/sql"
	"sync"

	"github.com/statusflow/statusflow/internal/store"
)

// enabledHooks keeps each instance's enabled webhooks in memory between
// events: [Service.TxHook] runs for every event, and on SQLite the lookup is
// a query per event on the one writer.
//
// It is on only when the store is the database's single writer
// ([store.Store.SingleWriter]: a SQLite file, which one process holds):
// every change to the webhooks table then goes through this process, and
// this process tells the cache (see change). With PostgreSQL, replicas share
// the table and another replica's change would never reach this memory, so
// nothing is kept between transactions: every batch of events reads the
// webhooks again (on the store's side, in the round trip that begins the
// batch), and a change on any replica applies to the events of every batch
// that begins after it commits. That is the behaviour from before the cache
// moved here.
//
// Correctness does not rest on the order of the store's batches: a change
// is announced before it is written and again once it has committed or
// failed (change, then its done func); in between nothing is kept, and an
// answer read before the change began is not kept once it ended (gen). So
// the memory only ever holds webhooks read while no change was in flight
// and none has happened since, which are the committed ones: the event
// transaction that read them held no uncommitted webhook change, whether it
// committed or rolled back.
type enabledHooks struct {
	mu       sync.Mutex
	on       bool
	gen      uint64                      // changes begun or ended
	changing int                         // changes in flight
	byInst   map[string][]*store.Webhook // instance → enabled webhooks
}

func newEnabledHooks(on bool) *enabledHooks {
	return &enabledHooks{on: on, byInst: make(map[string][]*store.Webhook)}
}

// list returns the instance's enabled webhooks, from memory when it can,
// else read with read (in the event's transaction) and remembered.
func (c *enabledHooks) list(ctx context.Context, tx *sql.Tx, instance string,
	read func(ctx context.Context, tx *sql.Tx, instance string) ([]*store.Webhook, error)) ([]*store.Webhook, error) {
	if c == nil || !c.on {
		return read(ctx, tx, instance)
	}
	c.mu.Lock()
	ws, ok := c.byInst[instance]
	gen, quiet := c.gen, c.changing == 0
	c.mu.Unlock()
	if ok {
		return ws, nil
	}
	ws, err := read(ctx, tx, instance)
	if err != nil {
		return nil, err
	}
	if quiet {
		c.mu.Lock()
		if c.gen == gen {
			c.byInst[instance] = ws
		}
		c.mu.Unlock()
	}
	return ws, nil
}

// change announces a change to the webhooks table (any instance's): nothing
// is kept from now until done is called, which the caller does once the
// change has committed or failed. done may be called more than once.
func (c *enabledHooks) change() (done func()) {
	if c == nil || !c.on {
		return func() {}
	}
	c.mu.Lock()
	c.gen++
	c.changing++
	clear(c.byInst)
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.gen++
			c.changing--
			clear(c.byInst)
			c.mu.Unlock()
		})
	}
}
