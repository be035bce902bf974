package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL pipelining of group-commit batches.
//
// A batch on PostgreSQL pays a network round trip per statement, and the
// publishing path runs eight of them per request (two events, their seq and
// webhook lookups, the status row, the sandbox row). In a batch of several
// writes, statements whose result nobody reads (the INSERTs of
// [Store.TxExec] from a pipelined write, see [Store.WritePipelined]) are
// queued instead and sent together in one pgx pipeline just before the next
// statement that reads, or before COMMIT; per-batch memories of each
// instance's last event seq and enabled webhooks remove most reads. A
// batch of 60 requests then costs a handful of round trips and one WAL
// flush instead of ~500 round trips and 60 flushes.
//
// Each request keeps its all-or-nothing guarantee: any failing statement
// aborts PostgreSQL's transaction, so a queued statement that fails fails
// the batch, which commitBatch rolls back and replays one write per
// transaction with every statement run at once (errors then reach the
// write that caused them, e.g. ErrConflict).

// deferredResult is the result of a queued statement: nobody may read it.
type deferredResult struct{}

var errDeferred = errors.New("store: the result of a pipelined statement is not available")

func (deferredResult) LastInsertId() (int64, error) { return 0, errDeferred }
func (deferredResult) RowsAffected() (int64, error) { return 0, errDeferred }

// pipeline is the PostgreSQL state of the batch being written; it belongs to
// the leader.
type pipeline struct {
	// pgConn is the pgx connection under wconn. The leader is the only user
	// of wconn and of the transaction on it, so sending a pgx batch between
	// two of the transaction's statements cannot interleave with another
	// use.
	pgConn *pgx.Conn
	// on: the write running now is pipelined and the batch has several.
	on      bool
	pending pgx.Batch

	ord   int64                 // events written in this batch (see nextOrd)
	hooks map[string][]*Webhook // instance → enabled webhooks seen in this batch

	done *sql.Tx // see doneTx
}

// bindPgConn remembers the pgx connection under l's writer connection.
func (s *Store) bindPgConn(l *lane) {
	l.pl.pgConn = nil
	if s.Dialect != Postgres || l.wconn == nil {
		return
	}
	l.wconn.Raw(func(dc any) error {
		if c, ok := dc.(interface{ Conn() *pgx.Conn }); ok {
			l.pl.pgConn = c.Conn()
		}
		return nil
	})
}

// resetPipeline starts a batch with empty memories.
func (s *Store) resetPipeline(l *lane) {
	l.pl.on = false
	l.pl.pending.QueuedQueries = l.pl.pending.QueuedQueries[:0]
	l.pl.ord = 0
	clear(l.pl.hooks)
}

// queue queues q when tx is a batch's and the running write is pipelined.
func (s *Store) queue(tx *sql.Tx, q string, args []any) bool {
	l := s.laneOf(tx)
	if l == nil || !l.pl.on || l.pl.pgConn == nil {
		return false
	}
	l.pl.pending.Queue(q, args...)
	return true
}

// flush sends the statements queued in tx in one round trip and returns the
// first error.
func (s *Store) flush(ctx context.Context, tx *sql.Tx) error {
	l := s.laneOf(tx)
	if l == nil || len(l.pl.pending.QueuedQueries) == 0 {
		return nil
	}
	l.pl.pending.QueuedQueries = mergeInserts(l.pl.pending.QueuedQueries)
	n := len(l.pl.pending.QueuedQueries)
	br := l.pl.pgConn.SendBatch(ctx, &l.pl.pending)
	var first error
	for range n {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	l.pl.pending.QueuedQueries = l.pl.pending.QueuedQueries[:0]
	return first
}

// connBroken reports whether err says the writer connection is unusable (as
// opposed to a statement PostgreSQL refused), so the next batch opens a new one.
func connBroken(err error) bool {
	var pe *pgconn.PgError
	return err != nil && !errors.As(err, &pe) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// A batch of pipelined writes only (the publishing path's) runs without
// database/sql's transaction, straight on pgx, in two round trips: one
// sends BEGIN and the read its writes need (the enabled webhooks of the
// instances named by WithWriteLane, one statement for all of them), the
// other every queued statement (merged per table, see mergeInserts) and
// COMMIT. Events take their seqs from the transaction id (see "Event seqs"
// in events.go), so nothing is locked and batches of one instance commit
// side by side. The writes get the lane's done transaction: a write that
// reads anything else on it gets sql.ErrTxDone, which fails the batch into
// the one-by-one replay.

// rawBatch reports whether batch runs raw.
func (s *Store) rawBatch(l *lane, batch []*writeReq) bool {
	if s.Dialect != Postgres || len(batch) < 2 || l.pl.pgConn == nil || l.pl.done == nil {
		return false
	}
	for _, r := range batch {
		if !r.pipelined || r.instance == "" {
			return false
		}
	}
	return true
}

// doneTx is a transaction already rolled back, a lane's stand-in for the
// raw batch's (laneOf finds the lane by it).
func doneTx(db *sql.DB) *sql.Tx {
	tx, err := db.Begin()
	if err != nil {
		return nil
	}
	tx.Rollback()
	return tx
}

func (s *Store) runRaw(l *lane, batch []*writeReq) (errs []error, ok bool) {
	ctx := context.Background()
	errs = make([]error, len(batch))
	pc := l.pl.pgConn
	s.resetPipeline(l)
	defer s.resetPipeline(l)

	// BEGIN and the reads, one round trip.
	var instances []string
	for _, r := range batch {
		if !slices.Contains(instances, r.instance) {
			instances = append(instances, r.instance)
		}
	}
	var b pgx.Batch
	b.Queue(`BEGIN`)
	b.Queue(`SELECT `+webhookColumns+` FROM webhooks WHERE instance = ANY($1::text[]) AND enabled = $2 ORDER BY instance, label`, instances, true)
	hooks := make(map[string][]*Webhook, len(instances))
	for _, inst := range instances {
		hooks[inst] = nil // none enabled unless read below
	}
	err := func() error {
		br := pc.SendBatch(ctx, &b)
		defer br.Close()
		if _, err := br.Exec(); err != nil { // BEGIN
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			w, err := scanWebhook(rows)
			if err != nil {
				rows.Close()
				return err
			}
			hooks[w.Instance] = append(hooks[w.Instance], w)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return br.Close()
	}()
	if err != nil {
		s.rawRollback(l)
		return errs, false
	}
	if l.pl.hooks == nil {
		l.pl.hooks = make(map[string][]*Webhook)
	}
	maps.Copy(l.pl.hooks, hooks)

	l.batchTx.Store(l.pl.done)
	defer l.batchTx.Store(nil)
	l.pl.on = true
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			break
		}
		if err := r.fn(r.ctx, l.pl.done); err != nil {
			errs[i] = err
			break
		}
	}
	l.pl.on = false
	for _, err := range errs {
		if err != nil {
			s.rawRollback(l)
			return errs, false
		}
	}
	// Every write and COMMIT, one round trip.
	l.pl.pending.Queue(`COMMIT`)
	if err := s.flush(ctx, l.pl.done); err != nil {
		s.rawRollback(l)
		return errs, false
	}
	s.commits.Add(1)
	return errs, true
}

// rawRollback ends a raw batch that failed; the batch is then replayed one
// write at a time (commitBatch).
func (s *Store) rawRollback(l *lane) {
	if l.pl.pgConn == nil {
		return
	}
	if _, err := l.pl.pgConn.Exec(context.Background(), `ROLLBACK`); err != nil && connBroken(err) {
		l.dropConn()
	}
}
