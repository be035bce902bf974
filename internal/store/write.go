package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Write runs fn in a write transaction and returns its error.
//
// On SQLite, writes are group-committed: SQLite allows one writer at a time,
// so concurrent calls queue, and whichever caller finds no commit running
// becomes the leader and commits everything queued so far in one
// transaction (a failing fn never takes the others' work with it, see
// commitBatch). The leader is a caller already on a CPU, not a dedicated
// goroutine that would wait its turn behind hundreds of request goroutines.
// Without this, each request's commit would queue on the database lock (and
// sleep in the busy handler). On PostgreSQL each call is its own transaction.
//
// fn must only use tx (never s.DB: on SQLite that could wait for the
// connection the batch holds) and must not keep it after returning.
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.Dialect != SQLite {
		tx, err := s.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1)}
	s.wmu.Lock()
	if s.wclosed {
		s.wmu.Unlock()
		return fmt.Errorf("store: closed")
	}
	s.wqueue = append(s.wqueue, req)
	lead := !s.wbusy
	s.wbusy = true
	s.wmu.Unlock()
	for {
		if lead {
			s.lead()
		}
		r := <-req.done
		if !r.lead {
			return r.err
		}
		lead = true // the previous leader handed over; our write is still queued
	}
}

type writeReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan writeResult
}

type writeResult struct {
	err  error
	lead bool // not a result: become the leader
}

// writer is the group-commit state.
type writer struct {
	wmu     sync.Mutex
	wqueue  []*writeReq
	wbusy   bool // a leader is committing
	wclosed bool
}

// maxBatch bounds how many writes share one transaction, so one commit never
// grows without bound under load.
const maxBatch = 256

// lead commits one batch, then hands leadership to the oldest write still
// queued (so no caller commits others' batches forever), or ends it.
func (s *Store) lead() {
	s.wmu.Lock()
	n := min(len(s.wqueue), maxBatch)
	batch := append([]*writeReq(nil), s.wqueue[:n]...)
	s.wqueue = append(s.wqueue[:0], s.wqueue[n:]...)
	s.wmu.Unlock()

	s.commitBatch(batch)

	s.wmu.Lock()
	if len(s.wqueue) == 0 {
		s.wbusy = false
		s.wmu.Unlock()
		return
	}
	next := s.wqueue[0]
	s.wmu.Unlock()
	next.done <- writeResult{lead: true}
}

// stopWriter refuses new writes; queued ones still commit.
func (s *Store) stopWriter() {
	s.wmu.Lock()
	s.wclosed = true
	s.wmu.Unlock()
}

func (s *Store) commitBatch(batch []*writeReq) {
	// Fast path: every write in one transaction. Failures are rare (a unique
	// key taken, a cancelled request); when one happens the transaction is
	// rolled back and each write retried in its own, so one failure never
	// takes the others' work with it.
	if len(batch) > 1 {
		if errs, ok := s.runBatch(batch); ok {
			for i, r := range batch {
				r.done <- writeResult{err: errs[i]}
			}
			return
		}
	}
	for _, r := range batch {
		errs, _ := s.runBatch([]*writeReq{r})
		r.done <- writeResult{err: errs[0]}
	}
}

// runBatch runs the writes in one transaction. It reports ok=false, having
// rolled back, when more than one write was given and any failed.
func (s *Store) runBatch(batch []*writeReq) (errs []error, ok bool) {
	ctx := context.Background()
	errs = make([]error, len(batch))
	fail := func(err error) ([]error, bool) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, false
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	failed := false
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i], failed = err, true
			continue
		}
		if err := r.fn(r.ctx, tx); err != nil {
			errs[i], failed = err, true
		}
	}
	if failed {
		tx.Rollback()
		if len(batch) > 1 {
			return errs, false
		}
		return errs, true
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return errs, true
}

// Exec runs one statement as a write: through the group-commit writer on
// SQLite (so it never waits on the database lock in the busy handler), as a
// plain statement on PostgreSQL.
func (s *Store) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s.Dialect != SQLite {
		return s.DB.ExecContext(ctx, q, args...)
	}
	var res sql.Result
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = s.TxExec(ctx, tx, q, args...)
		return err
	})
	return res, err
}
