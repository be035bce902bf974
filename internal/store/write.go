package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Write runs fn in a write transaction and returns its error.
//
// Writes are group-committed: concurrent calls queue, and whichever caller
// finds no commit running becomes the leader and commits everything queued
// so far in one transaction (a failing fn never takes the others' work with
// it, see commitBatch). The leader is a caller already on a CPU, not a
// dedicated goroutine that would wait its turn behind hundreds of request
// goroutines. On SQLite, which allows one writer at a time, each request's
// commit would otherwise queue on the database lock (and sleep in the busy
// handler). On PostgreSQL a commit is a WAL flush: one per request capped
// publishing at ~0.17x a bare pgbench INSERT loop on the same machine, where
// one flush per batch carries dozens of requests.
//
// fn must only use tx (never s.DB: on SQLite that could wait for the
// connection the batch holds) and must not keep it after returning.
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.write(ctx, &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1)})
}

// WritePipelined is [Store.Write] for a fn that runs its statements only
// through the store's Tx methods (TxExec, TxQuery, TxQueryRow and the
// methods built on them), never on tx directly, and reads no result of
// TxExec: on PostgreSQL its writes may then be queued and sent in one round
// trip with the rest of the batch (see pipeline.go). The event log's writes
// take this path.
func (s *Store) WritePipelined(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.write(ctx, &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1), pipelined: true})
}

func (s *Store) write(ctx context.Context, req *writeReq) error {
	req.instance = instanceOf(ctx)
	l := s.laneFor(ctx)
	lead, err := l.enqueue(req)
	if err != nil {
		return err
	}
	for {
		if lead {
			s.lead(l)
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
	// pipelined: fn keeps to WritePipelined's rules.
	pipelined bool
	instance  string // see WithWriteLane
}

// WriteQueued queues fn like [Store.Write] but returns at once; wait returns
// its error once it has committed. Writes commit in the order they were
// queued, so a later Write from the same goroutine returning nil means this
// one has committed too. The core queues a status's status.accepted event
// this way: it commits in the same batch as whatever the engine writes next,
// instead of costing the request a commit of its own. fn must keep to
// [Store.WritePipelined]'s rules.
func (s *Store) WriteQueued(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) (wait func() error) {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1), queued: true, pipelined: true, instance: instanceOf(ctx)}
	l := s.laneFor(ctx)
	lead, err := l.enqueue(req)
	if err != nil {
		return func() error { return err }
	}
	if lead {
		go s.lead(l) // nobody waits here to lead
	}
	var once sync.Once
	return func() error {
		once.Do(func() { err = (<-req.done).err })
		return err
	}
}

// enqueue queues req and reports whether its caller is to lead (no leader
// is committing).
func (l *lane) enqueue(req *writeReq) (lead bool, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wclosed {
		return false, fmt.Errorf("store: closed")
	}
	l.wqueue = append(l.wqueue, req)
	lead = !l.wbusy
	l.wbusy = true
	return lead, nil
}

type writeResult struct {
	err  error
	lead bool // not a result: become the leader
}

// lane is one group-commit queue and its writer connection. SQLite has one
// (one writer at a time is its model); PostgreSQL has pgLanes, so batches
// commit side by side: one batch's round trips and WAL flush overlap the
// next batch's.
type lane struct {
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

	// batchTx is the transaction of the batch being written (atomic: other
	// lanes' leaders compare it, see laneOf) and batchStmts its bound
	// statements (see txStmt); both belong to the leader.
	batchTx    atomic.Pointer[sql.Tx]
	batchStmts map[string]*sql.Stmt

	pl pipeline // PostgreSQL
}

// pgLanes is how many batches commit side by side on PostgreSQL. Fewer
// lanes make bigger batches, and a batch's cost is mostly per batch (its
// round trips, its WAL flush, waking its backend), not per write: measured
// with cmd/benchpg on 2 busy shared CPUs, CPU per published status was
// ~1.5 ms with 8 lanes (7 writes a batch), 0.9–1.1 ms with 4 or 3, 0.7–1.0 ms
// with 2 (25–30 writes a batch) and 0.9–1.2 ms with 1, which no longer
// overlaps one batch's round trips with the next.
const pgLanes = 2

type laneKey struct{}

type writeKeys struct{ lane, instance string }

// WithWriteLane returns ctx whose writes go through the lane of key: writes
// of one key commit in the order they were queued (the event log queues a
// status's events this way), and so do all writes without a key (the
// first lane: [Store.WriteQueued]'s ordering holds for them). instance, when not empty, is the instance whose events the write
// records: on PostgreSQL a batch reads what those need (the last event seq,
// the enabled webhooks) in the round trip that opens its transaction.
func WithWriteLane(ctx context.Context, key, instance string) context.Context {
	return context.WithValue(ctx, laneKey{}, writeKeys{key, instance})
}

// laneFor is the lane a write in ctx goes through.
func (s *Store) laneFor(ctx context.Context) *lane {
	if len(s.lanes) == 1 {
		return s.lanes[0]
	}
	if k, ok := ctx.Value(laneKey{}).(writeKeys); ok && k.lane != "" {
		h := fnv.New32a()
		h.Write([]byte(k.lane))
		return s.lanes[h.Sum32()%uint32(len(s.lanes))]
	}
	return s.lanes[0]
}

func instanceOf(ctx context.Context) string {
	k, _ := ctx.Value(laneKey{}).(writeKeys)
	return k.instance
}

// laneOf is the lane whose batch runs in tx, or nil.
func (s *Store) laneOf(tx *sql.Tx) *lane {
	for _, l := range s.lanes {
		if l.batchTx.Load() == tx {
			return l
		}
	}
	return nil
}

// beginWrite starts a batch's transaction on the writer connection, opening
// (or replacing a broken) one as needed. Only the leader calls it.
func (s *Store) beginWrite(ctx context.Context, l *lane) (*sql.Tx, error) {
	for attempt := 0; ; attempt++ {
		if l.wconn == nil {
			c, err := s.DB.Conn(ctx)
			if err != nil {
				return nil, err
			}
			l.wconn = c
			s.bindPgConn(l)
		}
		tx, err := l.wconn.BeginTx(ctx, nil)
		if (errors.Is(err, sql.ErrConnDone) || s.Dialect == Postgres && connBroken(err)) && attempt == 0 {
			l.dropConn()
			continue
		}
		return tx, err
	}
}

// dropConn closes the writer connection; the next batch opens another.
func (l *lane) dropConn() {
	if l.wconn != nil {
		l.wconn.Close()
		l.wconn = nil
	}
	l.pl.pgConn = nil
}

// maxBatch bounds how many writes share one transaction, so one commit never
// grows without bound under load.
const maxBatch = 256

// lead commits one batch, then hands leadership to the oldest caller still
// waiting in Write (so no caller commits others' batches forever), keeps it
// while only WriteQueued writes are left, or ends it.
func (s *Store) lead(l *lane) {
	for {
		l.linger()
		l.wmu.Lock()
		n := min(len(l.wqueue), maxBatch)
		batch := append([]*writeReq(nil), l.wqueue[:n]...)
		l.wqueue = append(l.wqueue[:0], l.wqueue[n:]...)
		l.wmu.Unlock()

		s.commitBatch(l, batch)
		if s.walLong.Swap(false) {
			s.catchUpCheckpoint(l)
		}

		l.wmu.Lock()
		if len(l.wqueue) == 0 {
			l.wbusy = false
			l.wmu.Unlock()
			return
		}
		for _, next := range l.wqueue {
			if !next.queued {
				l.wmu.Unlock()
				next.done <- writeResult{lead: true}
				return
			}
		}
		l.wmu.Unlock()
	}
}

// catchUpCheckpoint runs a PASSIVE checkpoint on the writer connection
// between two batches (see startCheckpoints): with no write in between, it
// copies the WAL to its end, so the next batch restarts the WAL.
func (s *Store) catchUpCheckpoint(l *lane) {
	if l.wconn == nil {
		return
	}
	l.wconn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
}

// Before it takes a batch, the leader yields its CPU a few times while fewer
// than lingerEnough writes are queued. On a busy server the goroutines that
// run meanwhile are the requests about to queue their writes, so the commit
// carries more of them: fewer commits, each rewriting the same hot pages.
// When nothing else is runnable Gosched returns at once, so a quiet server
// does not wait.
const (
	lingerYields = 3
	lingerEnough = 24
)

func (l *lane) linger() {
	for range lingerYields {
		l.wmu.Lock()
		n := len(l.wqueue)
		l.wmu.Unlock()
		if n >= lingerEnough {
			return
		}
		runtime.Gosched()
	}
}

// stopWriter refuses new writes, waits for the queued ones to commit and
// releases the writer connection.
func (s *Store) stopWriter() {
	for _, l := range s.lanes {
		l.wmu.Lock()
		l.wclosed = true
		for l.wbusy {
			l.wmu.Unlock()
			time.Sleep(time.Millisecond)
			l.wmu.Lock()
		}
		l.dropConn()
		l.wmu.Unlock()
	}
}

// WriteStats counts the group-commit writer's work since the store opened
// (benchmarks print writes per batch).
type WriteStats struct {
	// Writes committed or failed, Batches they went in, Replays: batches
	// that failed and were replayed one write per transaction.
	Writes, Batches, Replays int64
}

// WriteStats returns the writer's counters.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{Writes: s.stats.writes.Load(), Batches: s.stats.batches.Load(), Replays: s.stats.replays.Load()}
}

type writeCounters struct{ writes, batches, replays atomic.Int64 }

func (s *Store) commitBatch(l *lane, batch []*writeReq) {
	s.stats.writes.Add(int64(len(batch)))
	s.stats.batches.Add(1)
	// Fast path: every write in one transaction. Failures are rare (a unique
	// key taken, a cancelled request); when one happens the transaction is
	// rolled back and each write retried in its own, so one failure never
	// takes the others' work with it.
	if len(batch) > 1 {
		if errs, ok := s.runBatch(l, batch); ok {
			for i, r := range batch {
				r.done <- writeResult{err: errs[i]}
			}
			return
		}
	}
	if len(batch) > 1 {
		s.stats.replays.Add(1)
	}
	for _, r := range batch {
		errs, _ := s.runBatch(l, []*writeReq{r})
		r.done <- writeResult{err: errs[0]}
	}
}

// runBatch runs the writes in one transaction. It reports ok=false, having
// rolled back, when more than one write was given and any failed.
func (s *Store) runBatch(l *lane, batch []*writeReq) (errs []error, ok bool) {
	if s.rawBatch(l, batch) {
		return s.runRaw(l, batch)
	}
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
	tx, err := s.beginWrite(ctx, l)
	if err != nil {
		return fail(err)
	}
	l.batchTx.Store(tx)
	if l.batchStmts == nil {
		l.batchStmts = make(map[string]*sql.Stmt)
	}
	s.resetPipeline(l)
	defer func() {
		l.batchTx.Store(nil)
		clear(l.batchStmts) // database/sql closes them with the transaction
		s.resetPipeline(l)
	}()
	// Only a batch of several writes queues statements: one write alone
	// runs each at once, so its errors reach it as they happen.
	pipelining := s.Dialect == Postgres && len(batch) > 1 && l.pl.pgConn != nil
	failed := false
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i], failed = err, true
			continue
		}
		if !r.pipelined {
			// It may change the webhooks the batch's pipelined writes
			// read (WebhookListEnabledTx): they read them again after it.
			clear(l.pl.hooks)
			// It may read on tx directly what earlier writes queued.
			if err := s.flush(ctx, tx); err != nil {
				errs[i], failed = err, true
				break
			}
		}
		l.pl.on = pipelining && r.pipelined
		err := r.fn(r.ctx, tx)
		l.pl.on = false
		if err != nil {
			errs[i], failed = err, true
			if pipelining {
				break // the transaction is aborted: the others replay alone
			}
		}
	}
	if !failed {
		if err := s.flush(ctx, tx); err != nil {
			errs[len(batch)-1], failed = err, true
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
		if s.Dialect == Postgres && connBroken(err) {
			l.dropConn()
		}
		return fail(err)
	}
	s.commits.Add(1)
	return errs, true
}

// Commits returns how many write transactions the group-commit writer has
// committed: cmd/benchhttp divides it by the requests it sent to show that a
// publication costs one commit (or less, batched).
func (s *Store) Commits() uint64 { return s.commits.Load() }

// Exec runs one statement as a write through the group-commit writer (on
// SQLite it never waits on the database lock in the busy handler; on
// PostgreSQL it shares a batch's commit).
func (s *Store) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = s.TxExec(ctx, tx, q, args...)
		return err
	})
	return res, err
}
