package store

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
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

	seq   map[string]int64      // instance → last event seq written in this batch
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
	clear(l.pl.seq)
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
// sends BEGIN, the batch's event-seq locks (see seqLockSQL) and the reads
// its writes need (each instance's last event seq and enabled webhooks,
// named by WithWriteLane: one statement each for all of the batch's
// instances), the other every queued statement (merged per table, see
// mergeInserts) and COMMIT. The writes get the lane's done transaction: a write
// that reads anything else on it gets sql.ErrTxDone, which fails the batch
// into the one-by-one replay.

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
	b.Queue(seqLockSQL, seqLockKeys(instances))
	b.Queue(`SELECT i, (SELECT MAX(seq) FROM events WHERE instance = i) FROM unnest($1::text[]) i`, instances)
	b.Queue(`SELECT `+webhookColumns+` FROM webhooks WHERE instance = ANY($1::text[]) AND enabled = $2 ORDER BY instance, label`, instances, true)
	if l.pl.seq == nil {
		l.pl.seq = make(map[string]int64)
	}
	hooks := make(map[string][]*Webhook, len(instances))
	for _, inst := range instances {
		hooks[inst] = nil // none enabled unless read below
	}
	err := func() error {
		br := pc.SendBatch(ctx, &b)
		defer br.Close()
		for range 2 { // BEGIN, the locks
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var inst string
			var last *int64
			if err := rows.Scan(&inst, &last); err != nil {
				rows.Close()
				return err
			}
			if last != nil {
				l.pl.seq[inst] = *last
			} else {
				l.pl.seq[inst] = 0
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = br.Query()
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

// Event seqs and commit order.
//
// A reader pages through an instance's event log with a cursor (the last
// seq it saw: GET /api/events/:instance?cursor=…, seq > cursor). That is
// only safe if an instance's events become visible in seq order: an event
// committed after a reader has passed its seq would never be shown. Two
// lanes (or two replicas) writing events of one instance could do just
// that: each batch reads the last seq when it begins, and the batch that
// took the higher seqs may commit first. So a batch writing events of an
// instance first takes a transaction advisory lock of that instance (held
// until its COMMIT or ROLLBACK) and only then reads the last seq: batches
// of one instance commit one after the other, in seq order, across lanes
// and replicas. Batches of other instances do not wait. A raw batch takes
// its instances' locks in ascending key order in one statement, so two
// batches never wait for each other's; a batch through database/sql takes
// each lock when it first writes an event of the instance (PostgreSQL
// breaks the rare deadlock of two such batches, and the batch that fails
// is replayed one write at a time).

// seqLockSQL takes the advisory locks of the keys $1 in the array's order.
const seqLockSQL = `SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) k`

// seqLockKey is the advisory lock key of instance's event seqs.
func seqLockKey(instance string) int64 {
	h := fnv.New64a()
	h.Write([]byte("statusflow.events\x00"))
	h.Write([]byte(instance))
	return int64(h.Sum64())
}

// seqLockKeys are the lock keys of instances, ascending and distinct.
func seqLockKeys(instances []string) []int64 {
	keys := make([]int64, 0, len(instances))
	for _, inst := range instances {
		keys = append(keys, seqLockKey(inst))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
