package store

import (
	"cmp"
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/statusflow/statusflow/internal/metrics"
)

// Event is a stored event; Body is its CloudEvents JSON.
type Event struct {
	ID       string
	Seq      int64
	Instance string
	Type     string
	TraceID  string
	Source   string
	Platform string
	Time     time.Time
	Body     string
}

// EventInsertTx stores an event inside tx, so that work written in the same
// transaction (webhook outbox rows) exists if and only if the event does.
// Seq orders events for cursor paging (see "Event seqs" below).
func (s *Store) EventInsertTx(ctx context.Context, tx *sql.Tx, ev *Event) error {
	q, seq := eventInsert.one, ev.Seq
	if s.Dialect == Postgres {
		// PostgreSQL computes every seq from the transaction's id (a seq
		// given here could break the readers' horizon): the statement
		// takes the event's rank instead, and ev.Seq is left as it is
		// (nobody reads it back).
		q, seq = eventInsertPg.one, s.nextOrd(tx)
	} else if seq == 0 {
		var err error
		if seq, err = s.nextSeq(ctx, tx, ev.Instance); err != nil {
			return err
		}
		ev.Seq = seq
	}
	_, err := s.TxExec(ctx, tx, q, ev.ID, seq, ev.Instance, ev.Type, ev.TraceID, ev.Source, ev.Platform, millis(ev.Time), ev.Body)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

var eventInsert = newInsert("events",
	[]string{"id", "seq", "instance", "type", "trace_id", "source", "platform", "time", "body"},
	[]colKind{colText, colInt, colText, colText, colText, colText, colText, colInt, colText}, "")

// Event seqs.
//
// A reader pages through an instance's event log with a cursor (the last
// seq it saw: GET /api/events/log/:instance?cursor=…, seq > cursor). That
// is only safe if no event with a lower seq than one a reader has seen can
// still appear.
//
// SQLite has one writer (Write): a seq is now in microseconds, or one past
// the instance's last seq when that is later (nextSeq), and events commit in
// seq order.
//
// On PostgreSQL several transactions write events at once (two lanes of
// one process, other replicas), so seqs cannot be handed out in commit
// order without making an instance's batches commit one after the other.
// The rule there is the one PgQ and other PostgreSQL queues use:
//
//   - an event's seq is pgSeqBase + its transaction's id (pg_current_xact_id,
//     which only grows) × 2^20 + its rank within the transaction (nextOrd);
//   - a reader only returns events whose transaction id is below the xmin of
//     its own snapshot (pg_snapshot_xmin(pg_current_snapshot()), read in the
//     same statement): every transaction below it has ended, and every
//     transaction that has not yet written gets a greater id. So no event can
//     later appear below what a reader returned, and batches of one instance
//     commit side by side without a lock.
//
// The cost is on the reader's side: an event becomes readable once the
// transactions that took their ids before its own have ended, usually a few
// milliseconds (EventList waits that long for an event already committed).
// A transaction left open with an id anywhere on the PostgreSQL server (an
// "idle in transaction" session of another program) holds the event log
// back until it ends, as it holds back VACUUM; EventList then returns what
// is safe and says so in the log.
//
// pgSeqBase is 2^52: seqs stored before (microseconds since 1970, about
// 1.8 × 10^15) stay below the new ones, and transaction ids up to 2^42
// (trillions) fit in a bigint.
const (
	pgSeqBase  = int64(1) << 52
	pgSeqShift = 20
)

// eventInsertPg is eventInsert on PostgreSQL: the second parameter is the
// event's rank in its transaction, and the seq is computed from the
// transaction id (once per statement, an InitPlan).
var eventInsertPg = newInsertSQL(&insertSQL{
	one: `INSERT INTO events (id, seq, instance, type, trace_id, source, platform, time, body)
		VALUES ($1, ` + pgSeqExpr + ` + $2, $3, $4, $5, $6, $7, $8, $9)`,
	many: `INSERT INTO events (id, seq, instance, type, trace_id, source, platform, time, body)
		SELECT r.id, ` + pgSeqExpr + ` + r.ord, r.inst, r.typ, r.trace, r.src, r.plat, r.ms, r.body
		FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::text[])
			AS r(id, ord, inst, typ, trace, src, plat, ms, body)`,
	kinds: []colKind{colText, colInt, colText, colText, colText, colText, colText, colInt, colText},
})

// pgSeqExpr is the first seq of the running transaction.
var pgSeqExpr = pgSeqOf(`pg_current_xact_id()`)

// pgHorizonExpr is the seq below which every event is final (see "Event
// seqs"), for the running statement's snapshot.
var pgHorizonExpr = pgSeqOf(`pg_snapshot_xmin(pg_current_snapshot())`)

// pgSeqOf is the SQL of the first seq of the transaction whose xid8 is
// xid: the one place the seq rule is written in SQL (a scalar subquery, so
// PostgreSQL evaluates it once per statement).
func pgSeqOf(xid string) string {
	return `((SELECT ` + xid + `::text::int8) << ` + strconv.Itoa(pgSeqShift) + `) + ` + strconv.FormatInt(pgSeqBase, 10)
}

// nextOrd is the rank of the next event written in tx: per batch in a
// lane's transaction (at most maxBatch writes of a few events each, far
// below 2^20), else from a counter of the store (two events of one
// transaction only share a rank if 2^20 others were written between them).
func (s *Store) nextOrd(tx *sql.Tx) int64 {
	if l := s.laneOf(tx); l != nil {
		l.pl.ord++
		return l.pl.ord
	}
	return s.ord.Add(1) & (1<<pgSeqShift - 1)
}

// nextSeq is the next event seq of instance on SQLite, where every write
// goes through the one writer: now in microseconds, or one past the last
// seq when that is later. The last seq of each instance is kept in memory
// after its first lookup instead of being read back for every event; a
// rolled-back batch only leaves a gap, and seqs stay increasing.
func (s *Store) nextSeq(ctx context.Context, tx *sql.Tx, instance string) (int64, error) {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	last, ok := s.lastSeq[instance]
	if !ok {
		var m sql.NullInt64
		if err := s.TxQueryRow(ctx, tx, `SELECT MAX(seq) FROM events WHERE instance = $1`, instance).Scan(&m); err != nil {
			return 0, err
		}
		last = m.Int64
	}
	seq := max(time.Now().UnixMicro(), last+1)
	if s.lastSeq == nil {
		s.lastSeq = make(map[string]int64)
	}
	s.lastSeq[instance] = seq
	return seq, nil
}

// EventListParams filters EventList. Zero fields do not filter.
type EventListParams struct {
	Instance string
	TraceID  string
	Type     string
	Source   string
	Platform string
	Since    time.Time
	// AfterSeq is the cursor: only events with a greater seq.
	AfterSeq int64
	Limit    int
}

// EventList returns events oldest first, filtered by params. On
// PostgreSQL it returns only events below its snapshot's horizon (see
// "Event seqs"). When events already committed lie beyond it, it reads
// again until the horizon has passed them (for up to eventHorizonWait), so
// a reader sees what was published before it asked as soon as the
// transactions older than those events have ended; events committed while
// it waits do not make it wait longer.
func (s *Store) EventList(ctx context.Context, p *EventListParams) ([]*Event, error) {
	list, cut, target, err := s.eventList(ctx, p)
	if err != nil || cut == 0 {
		return list, err
	}
	deadline := time.Now().Add(eventHorizonWait)
	for wait := time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		if list, cut, _, err = s.eventList(ctx, p); err != nil || cut == 0 || cut > target {
			return list, err
		}
	}
	// Something older than those events is still open: an operator can
	// find it in pg_stat_activity.
	metrics.EventLogHeldBack()
	return list, nil
}

// eventHorizonWait bounds how long EventList waits for older transactions
// to end (see "Event seqs"); past it, it returns the events that are safe.
const eventHorizonWait = 2 * time.Second

// eventList is one read of EventList. cut is 0 when no event was left
// out, else the first seq it left out (PostgreSQL: the page's events past
// its snapshot's horizon), and last the page's last seq, left out or not.
func (s *Store) eventList(ctx context.Context, p *EventListParams) (list []*Event, cut, last int64, err error) {
	q := `SELECT id, seq, instance, type, trace_id, source, platform, time, body, 0 FROM events WHERE instance = $1 AND seq > $2`
	if s.Dialect == Postgres {
		// The horizon comes from the snapshot this statement reads with.
		q = `SELECT id, seq, instance, type, trace_id, source, platform, time, body, ` + pgHorizonExpr + ` FROM events WHERE instance = $1 AND seq > $2`
	}
	args := []any{p.Instance, p.AfterSeq}
	add := func(col string, v any) {
		args = append(args, v)
		q += " AND " + col + " $" + itoa(len(args))
	}
	if p.TraceID != "" {
		add("trace_id =", p.TraceID)
	}
	if p.Type != "" {
		add("type =", p.Type)
	}
	if p.Source != "" {
		add("source =", p.Source)
	}
	if p.Platform != "" {
		add("platform =", p.Platform)
	}
	if !p.Since.IsZero() {
		add("time >=", millis(p.Since))
	}
	args = append(args, pageLimit(p.Limit))
	q += " ORDER BY seq LIMIT $" + itoa(len(args))
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var t, horizon int64
		if err := rows.Scan(&e.ID, &e.Seq, &e.Instance, &e.Type, &e.TraceID, &e.Source, &e.Platform, &t, &e.Body, &horizon); err != nil {
			return nil, 0, 0, err
		}
		last = e.Seq
		if s.Dialect == Postgres && (cut != 0 || e.Seq >= horizon) {
			cut = cmp.Or(cut, e.Seq) // ordered by seq: the rest lie beyond too
			continue
		}
		e.Time = fromMillis(t)
		list = append(list, &e)
	}
	return list, cut, last, rows.Err()
}

func itoa(n int) string { return strconv.Itoa(n) }

// pageLimit is a list's page size: 100 unless 1–1000 is asked for.
func pageLimit(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}
