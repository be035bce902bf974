package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Write runs fn in a write transaction and returns its error.
//
// On SQLite, writes are group-committed: concurrent calls are queued, and one
// writer goroutine runs many of them in a single transaction, each inside its
// own SAVEPOINT so a failing fn rolls back only its own work. SQLite allows
// one writer at a time; without this, every request's commit would queue on
// the database lock (and sleep in the busy handler), and commits, not work,
// would bound throughput. On PostgreSQL each call is its own transaction.
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
	s.writerOnce.Do(s.startWriter)
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.writerStop:
		return fmt.Errorf("store: closed")
	}
	return <-req.done
}

type writeReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// maxBatch bounds how many writes share one transaction, so one commit never
// grows without bound under load.
const maxBatch = 256

type writer struct {
	writerOnce sync.Once
	writes     chan *writeReq
	writerStop chan struct{}
	writerDone chan struct{}
}

func (s *Store) startWriter() {
	// Buffered, so a caller enqueues at once even while a batch commits; the
	// channel keeps the callers' order, which the batches then follow.
	s.writes = make(chan *writeReq, maxBatch)
	s.writerDone = make(chan struct{})
	go s.writeLoop()
}

func (s *Store) stopWriter() {
	s.stopOnce.Do(func() { close(s.writerStop) })
	if s.writerDone != nil {
		<-s.writerDone
	}
}

func (s *Store) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case <-s.writerStop:
			return
		case r := <-s.writes:
			batch = append(batch[:0], r)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
	}
}

func (s *Store) commitBatch(batch []*writeReq) {
	// Fast path: every write in one transaction. Failures are rare (a unique
	// key taken, a cancelled request); when one happens the transaction is
	// rolled back and each write retried in its own, so one failure never
	// takes the others' work with it.
	if len(batch) > 1 {
		if errs, ok := s.runBatch(batch); ok {
			for i, r := range batch {
				r.done <- errs[i]
			}
			return
		}
	}
	for _, r := range batch {
		errs, _ := s.runBatch([]*writeReq{r})
		r.done <- errs[0]
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
