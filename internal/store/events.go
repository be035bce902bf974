package store

import (
	"context"
	"database/sql"
	"strconv"
	"time"
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
// Seq orders events for cursor paging; it is the insert time in microseconds
// made unique per instance.
func (s *Store) EventInsertTx(ctx context.Context, tx *sql.Tx, ev *Event) error {
	if ev.Seq == 0 {
		seq, err := s.nextSeq(ctx, tx, ev.Instance)
		if err != nil {
			return err
		}
		ev.Seq = seq
	}
	_, err := s.TxExec(ctx, tx, eventInsert.one,
		ev.ID, ev.Seq, ev.Instance, ev.Type, ev.TraceID, ev.Source, ev.Platform, millis(ev.Time), ev.Body)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

var eventInsert = newInsert("events",
	[]string{"id", "seq", "instance", "type", "trace_id", "source", "platform", "time", "body"},
	[]colKind{colText, colInt, colText, colText, colText, colText, colText, colInt, colText}, "")

// nextSeq is the next event seq of instance: now in microseconds, or one
// past the last seq when that is later. On SQLite every write goes through
// the one writer (Write), so the last seq of each instance is kept in memory
// after its first lookup instead of being read back for every event; a
// rolled-back batch only leaves a gap, and seqs stay increasing. On
// PostgreSQL, where other processes write too, the last seq is read once
// per instance and batch.
func (s *Store) nextSeq(ctx context.Context, tx *sql.Tx, instance string) (seq int64, err error) {
	var last int64
	if s.Dialect == SQLite {
		s.seqMu.Lock()
		defer s.seqMu.Unlock()
		if l, ok := s.lastSeq[instance]; ok {
			last = l
		} else if last, err = s.maxSeq(ctx, tx, instance); err != nil {
			return 0, err
		}
	} else if l := s.laneOf(tx); l != nil {
		// PostgreSQL: read once per batch (under the instance's lock, see
		// seqLockSQL), then what the batch took.
		if prev, ok := l.pl.seq[instance]; ok {
			last = prev
		} else if last, err = s.lockMaxSeq(ctx, tx, instance); err != nil {
			return 0, err
		}
		defer func() {
			if l.pl.seq == nil {
				l.pl.seq = make(map[string]int64)
			}
			l.pl.seq[instance] = seq
		}()
	} else if last, err = s.lockMaxSeq(ctx, tx, instance); err != nil {
		return 0, err
	}
	seq = max(time.Now().UnixMicro(), last+1)
	if s.Dialect == SQLite {
		if s.lastSeq == nil {
			s.lastSeq = make(map[string]int64)
		}
		s.lastSeq[instance] = seq
	}
	return seq, nil
}

// lockMaxSeq is maxSeq on PostgreSQL once tx holds the lock of instance's
// seqs (see seqLockSQL); the SELECT runs after the lock is taken, so it sees
// every batch that held it before.
func (s *Store) lockMaxSeq(ctx context.Context, tx *sql.Tx, instance string) (int64, error) {
	if _, err := s.TxExec(ctx, tx, seqLockSQL, []int64{seqLockKey(instance)}); err != nil {
		return 0, err
	}
	return s.maxSeq(ctx, tx, instance)
}

func (s *Store) maxSeq(ctx context.Context, tx *sql.Tx, instance string) (int64, error) {
	var last sql.NullInt64
	err := s.TxQueryRow(ctx, tx, `SELECT MAX(seq) FROM events WHERE instance = $1`, instance).Scan(&last)
	return last.Int64, err
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

// EventList returns events oldest first, filtered by params.
func (s *Store) EventList(ctx context.Context, p *EventListParams) ([]*Event, error) {
	q := `SELECT id, seq, instance, type, trace_id, source, platform, time, body FROM events WHERE instance = $1 AND seq > $2`
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
		return nil, err
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var e Event
		var t int64
		if err := rows.Scan(&e.ID, &e.Seq, &e.Instance, &e.Type, &e.TraceID, &e.Source, &e.Platform, &t, &e.Body); err != nil {
			return nil, err
		}
		e.Time = fromMillis(t)
		out = append(out, &e)
	}
	return out, rows.Err()
}

func itoa(n int) string { return strconv.Itoa(n) }

// pageLimit is a list's page size: 100 unless 1–1000 is asked for.
func pageLimit(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}
