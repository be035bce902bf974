package store

import (
	"context"
	"database/sql"
	"sync"
)

// Writes deferred into a later transaction.
//
// Some writes must commit in the transaction of a write that comes later on
// the same request: the sandbox engine's send is itself a database write
// (its record of the message), and it commits with the status row and the
// status.published event, so the three never disagree and the request costs
// one commit. The core marks the request's context with [WithDeferred]
// before it sends; a store method called with that context (such as
// [Store.SandboxStatusRecord]) queues its write there instead of committing
// it; the event log (internal/events) takes the queued writes with
// [TakeDeferred] and runs them in the transaction that records the outcome.
// Neither the core nor the engine handles a transaction.

type deferredKey struct{}

// Deferred is the writes deferred on a context (see [WithDeferred]).
type Deferred struct {
	mu   sync.Mutex
	fns  []func(ctx context.Context, tx *sql.Tx) error
	used bool
}

// WithDeferred returns ctx on which writes are deferred until a later write
// takes them ([TakeDeferred]), and their holder.
func WithDeferred(ctx context.Context) (context.Context, *Deferred) {
	d := &Deferred{}
	return context.WithValue(ctx, deferredKey{}, d), d
}

// Used reports whether a write was deferred on d: the write that took it
// then committed (or failed) for it too.
func (d *Deferred) Used() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

// deferWrite queues fn on ctx's [Deferred] and reports whether ctx has one.
func deferWrite(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) bool {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	if d == nil {
		return false
	}
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	d.used = true
	d.mu.Unlock()
	return true
}

// TakeDeferred removes the writes deferred on ctx and returns them as one
// function to run in a transaction, in the order they were deferred; nil
// when there are none. It keeps to [Store.WritePipelined]'s rules when the
// deferred writes do (the store's own ones do).
func TakeDeferred(ctx context.Context) func(ctx context.Context, tx *sql.Tx) error {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	fns := d.fns
	d.fns = nil
	d.mu.Unlock()
	switch len(fns) {
	case 0:
		return nil
	case 1:
		return fns[0]
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, fn := range fns {
			if err := fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	}
}
