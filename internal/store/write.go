package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
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
	lead, err := s.enqueue(req)
	if err != nil {
		return err
	}
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
	ctx    context.Context
	fn     func(ctx context.Context, tx *sql.Tx) error
	done   chan writeResult
	queued bool // from WriteQueued: no caller waits to lead
}

// WriteQueued queues fn like [Store.Write] but returns at once; wait returns
// its error once it has committed. Writes commit in the order they were
// queued, so a later Write from the same goroutine returning nil means this
// one has committed too. The core queues a status's status.accepted event
// this way: it commits in the same batch as whatever the engine writes next,
// instead of costing the request a commit of its own.
//
// On PostgreSQL fn runs before WriteQueued returns.
func (s *Store) WriteQueued(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) (wait func() error) {
	if s.Dialect != SQLite {
		err := s.Write(ctx, fn)
		return func() error { return err }
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1), queued: true}
	lead, err := s.enqueue(req)
	if err != nil {
		return func() error { return err }
	}
	if lead {
		go s.lead() // nobody waits here to lead
	}
	var once sync.Once
	return func() error {
		once.Do(func() { err = (<-req.done).err })
		return err
	}
}

// enqueue queues req and reports whether its caller is to lead (no leader
// is committing).
func (s *Store) enqueue(req *writeReq) (lead bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wclosed {
		return false, fmt.Errorf("store: closed")
	}
	s.wqueue = append(s.wqueue, req)
	lead = !s.wbusy
	s.wbusy = true
	return lead, nil
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

	// wconn is the one connection batches are written on, used only by the
	// leader. SQLite drops a connection's whole page cache when another
	// connection has written since its last transaction; on one connection
	// the cache of the pages being appended to stays warm across commits,
	// where the pool would hand each batch a connection whose cache is cold.
	wconn *sql.Conn

	// batchTx is the transaction of the batch being written and batchStmts
	// its bound statements (see txStmt); both belong to the leader.
	batchTx    *sql.Tx
	batchStmts map[string]*sql.Stmt
}

// beginWrite starts a batch's transaction on the writer connection, opening
// (or replacing a broken) one as needed. Only the leader calls it.
func (s *Store) beginWrite(ctx context.Context) (*sql.Tx, error) {
	for attempt := 0; ; attempt++ {
		if s.wconn == nil {
			c, err := s.DB.Conn(ctx)
			if err != nil {
				return nil, err
			}
			s.wconn = c
		}
		tx, err := s.wconn.BeginTx(ctx, nil)
		if errors.Is(err, sql.ErrConnDone) && attempt == 0 {
			s.wconn.Close()
			s.wconn = nil
			continue
		}
		return tx, err
	}
}

// maxBatch bounds how many writes share one transaction, so one commit never
// grows without bound under load.
const maxBatch = 256

// lead commits one batch, then hands leadership to the oldest caller still
// waiting in Write (so no caller commits others' batches forever), keeps it
// while only WriteQueued writes are left, or ends it.
func (s *Store) lead() {
	for {
		s.linger()
		s.wmu.Lock()
		n := min(len(s.wqueue), maxBatch)
		batch := append([]*writeReq(nil), s.wqueue[:n]...)
		s.wqueue = append(s.wqueue[:0], s.wqueue[n:]...)
		s.wmu.Unlock()

		s.commitBatch(batch)
		if s.walLong.Swap(false) {
			s.catchUpCheckpoint()
		}

		s.wmu.Lock()
		if len(s.wqueue) == 0 {
			s.wbusy = false
			s.wmu.Unlock()
			return
		}
		for _, next := range s.wqueue {
			if !next.queued {
				s.wmu.Unlock()
				next.done <- writeResult{lead: true}
				return
			}
		}
		s.wmu.Unlock()
	}
}

// catchUpCheckpoint runs a PASSIVE checkpoint on the writer connection
// between two batches (see startCheckpoints): with no write in between, it
// copies the WAL to its end, so the next batch restarts the WAL.
func (s *Store) catchUpCheckpoint() {
	if s.wconn == nil {
		return
	}
	s.wconn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
}

// Before it takes a batch, the leader yields its CPU a few times while fewer
// than lingerEnough writes are queued. On a busy server the goroutines that
// run meanwhile are the requests about to queue their writes, so the commit
// carries more of them: fewer commits, each rewriting the same hot pages
// (measured: ~13 writes per commit without, ~35 with, +10–15 % publications
// per second). When nothing else is runnable Gosched returns at once, so a
// quiet server does not wait.
const (
	lingerYields = 3
	lingerEnough = 24
)

func (s *Store) linger() {
	for range lingerYields {
		s.wmu.Lock()
		n := len(s.wqueue)
		s.wmu.Unlock()
		if n >= lingerEnough {
			return
		}
		runtime.Gosched()
	}
}

// stopWriter refuses new writes, waits for the queued ones to commit and
// releases the writer connection.
func (s *Store) stopWriter() {
	s.wmu.Lock()
	s.wclosed = true
	for s.wbusy {
		s.wmu.Unlock()
		time.Sleep(time.Millisecond)
		s.wmu.Lock()
	}
	if s.wconn != nil {
		s.wconn.Close()
		s.wconn = nil
	}
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
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fail(err)
	}
	s.batchTx = tx
	if s.batchStmts == nil {
		s.batchStmts = make(map[string]*sql.Stmt)
	}
	defer func() {
		s.batchTx = nil
		clear(s.batchStmts) // database/sql closes them with the transaction
	}()
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
		s.forgetWebhooks() // it may hold what the rolled-back writes saw
		if len(batch) > 1 {
			return errs, false
		}
		return errs, true
	}
	if err := tx.Commit(); err != nil {
		s.forgetWebhooks()
		return fail(err)
	}
	return errs, true
}

// Exec runs one statement as a write: through the group-commit writer on
// SQLite (so it never waits on the database lock in the busy handler), as a
// plain statement on PostgreSQL.
func (s *Store) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.exec(ctx, nil, q, args...)
}

// exec is Exec; before, when set, runs first inside the SQLite transaction.
func (s *Store) exec(ctx context.Context, before func(), q string, args ...any) (sql.Result, error) {
	if s.Dialect != SQLite {
		return s.DB.ExecContext(ctx, q, args...)
	}
	var res sql.Result
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if before != nil {
			before()
		}
		var err error
		res, err = s.TxExec(ctx, tx, q, args...)
		return err
	})
	return res, err
}
