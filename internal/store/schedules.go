package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Schedule states. A row is pending until its time, running while a
// scheduler holds it (lease in LockedUntil), then done, failed or cancelled.
const (
	SchedulePending   = "pending"
	ScheduleRunning   = "running"
	ScheduleDone      = "done"
	ScheduleFailed    = "failed"
	ScheduleCancelled = "cancelled"
)

// Schedule is a command to run at DueAt: a publication (kind
// status.publish) or the revoke of an expiring status (status.delete).
type Schedule struct {
	ID          string
	Instance    string
	Kind        string
	MessageID   string
	Args        string // JSON of the command's args
	Origin      string // JSON
	TraceParent string
	DueAt       time.Time
	ExpireAfter time.Duration
	State       string
	PreparedAt  time.Time // zero until its media was prepared ahead
	LockedUntil time.Time
	LockToken   string
	Attempt     int
	ErrStatus   string
	ErrMessage  string
	CreatedAt   time.Time
	FinishedAt  time.Time
}

const scheduleCols = `id, instance, kind, message_id, args, origin, traceparent, due_at, expire_after_ms, state, prepared_at,
	locked_until, lock_token, attempt, error_status, error_message, created_at, finished_at`

func scanSchedule(sc interface{ Scan(...any) error }) (*Schedule, error) {
	var r Schedule
	var due, exp, prep, locked, created, finished int64
	if err := sc.Scan(&r.ID, &r.Instance, &r.Kind, &r.MessageID, &r.Args, &r.Origin, &r.TraceParent, &due, &exp, &r.State, &prep,
		&locked, &r.LockToken, &r.Attempt, &r.ErrStatus, &r.ErrMessage, &created, &finished); err != nil {
		return nil, err
	}
	r.DueAt, r.ExpireAfter, r.CreatedAt = fromMillis(due), time.Duration(exp)*time.Millisecond, fromMillis(created)
	if prep > 0 {
		r.PreparedAt = fromMillis(prep)
	}
	if locked > 0 {
		r.LockedUntil = fromMillis(locked)
	}
	if finished > 0 {
		r.FinishedAt = fromMillis(finished)
	}
	return &r, nil
}

// ScheduleInsertTx stores a pending schedule inside tx (the transaction of
// its status.scheduled event). [ErrConflict] when the instance already has a
// schedule of that kind for the message id.
func (s *Store) ScheduleInsertTx(ctx context.Context, tx *sql.Tx, r *Schedule) error {
	origin := r.Origin
	if origin == "" {
		origin = "{}"
	}
	_, err := s.TxExec(ctx, tx, `INSERT INTO schedules (id, instance, kind, message_id, args, origin, traceparent, due_at, expire_after_ms, state, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)`,
		r.ID, r.Instance, r.Kind, r.MessageID, r.Args, origin, r.TraceParent, millis(r.DueAt), r.ExpireAfter.Milliseconds(), millis(r.CreatedAt))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// ScheduleInsert stores a pending schedule on its own.
func (s *Store) ScheduleInsert(ctx context.Context, r *Schedule) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.ScheduleInsertTx(ctx, tx, r) })
}

// ScheduleGet returns one schedule of an instance, or [ErrNotFound].
func (s *Store) ScheduleGet(ctx context.Context, instance, id string) (*Schedule, error) {
	r, err := scanSchedule(s.DB.QueryRowContext(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE instance = $1 AND id = $2`, instance, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// ScheduleListParams select schedules of an instance.
type ScheduleListParams struct {
	Instance string
	// States filters by state; empty: pending and running.
	States []string
	// Limit is the page size (see pageLimit); After is the last id of
	// the previous page (rows come in (due_at, id) order).
	Limit int
	After *Schedule
}

// ScheduleList returns an instance's schedules in due order.
func (s *Store) ScheduleList(ctx context.Context, p *ScheduleListParams) ([]*Schedule, error) {
	states := p.States
	if len(states) == 0 {
		states = []string{SchedulePending, ScheduleRunning}
	}
	q := `SELECT ` + scheduleCols + ` FROM schedules WHERE instance = $1 AND state IN (`
	args := []any{p.Instance}
	for i, st := range states {
		if i > 0 {
			q += ", "
		}
		args = append(args, st)
		q += "$" + itoa(len(args))
	}
	q += ")"
	if p.After != nil {
		args = append(args, millis(p.After.DueAt), p.After.ID)
		q += " AND (due_at > $" + itoa(len(args)-1) + " OR (due_at = $" + itoa(len(args)-1) + " AND id > $" + itoa(len(args)) + "))"
	}
	args = append(args, pageLimit(p.Limit))
	q += " ORDER BY due_at, id LIMIT $" + itoa(len(args))
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Schedule
	for rows.Next() {
		r, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ScheduleCancel moves a pending schedule to cancelled. The state test is in
// the UPDATE, so a cancel racing the scheduler's claim has one winner: the
// caller gets the row as it ended up and whether this call cancelled it.
// [ErrNotFound] when the instance has no such schedule.
func (s *Store) ScheduleCancel(ctx context.Context, instance, id string, now time.Time) (*Schedule, bool, error) {
	var cancelled bool
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE schedules SET state = 'cancelled', finished_at = $3, error_status = 'cancelled', error_message = 'cancelled by request'
			WHERE instance = $1 AND id = $2 AND state = 'pending'`, instance, id, millis(now))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		cancelled = n == 1
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	r, err := s.ScheduleGet(ctx, instance, id)
	return r, cancelled, err
}

// ScheduleNextWake returns the earliest time the scheduler has something to
// do: a pending row's due time (or its prepare time, prepareAhead before),
// or a running row's lease end. ok is false when nothing is open. Each part
// is an ORDER BY … LIMIT 1 on a partial index, which stops at the first
// row: with thousands of schedules pending it reads a handful.
func (s *Store) ScheduleNextWake(ctx context.Context, prepareAhead time.Duration) (time.Time, bool, error) {
	var next int64
	ok := false
	for _, q := range []struct {
		sql   string
		shift time.Duration
	}{
		{`SELECT due_at FROM schedules WHERE state IN ('pending', 'running') AND state = 'pending' ORDER BY due_at LIMIT 1`, 0},
		{`SELECT due_at FROM schedules WHERE state IN ('pending', 'running') AND state = 'pending' AND prepared_at = 0 ORDER BY due_at LIMIT 1`, prepareAhead},
		{`SELECT locked_until FROM schedules WHERE state = 'running' ORDER BY locked_until LIMIT 1`, 0},
	} {
		var v int64
		err := s.DB.QueryRowContext(ctx, q.sql).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return time.Time{}, false, err
		}
		v -= q.shift.Milliseconds()
		if !ok || v < next {
			next, ok = v, true
		}
	}
	return fromMillis(next), ok, nil
}

// ScheduleClaimParams are the arguments of [Store.ScheduleClaimDue].
type ScheduleClaimParams struct {
	Now         time.Time
	LockedUntil time.Time
	Token       string
	Limit       int
}

// ScheduleClaimDue moves up to Limit due rows to running under p.Token and
// returns them: pending rows whose time has come, and running rows whose
// lease ran out (their scheduler died). As in [Store.OutboxClaimDue] the
// state test is repeated on the updated rows, so two claimers never both
// get a row.
func (s *Store) ScheduleClaimDue(ctx context.Context, p *ScheduleClaimParams) ([]*Schedule, error) {
	var out []*Schedule
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = nil
		// One index range per case (due pending rows, expired leases), not
		// an OR that would walk every open row.
		const due = `((state = 'pending' AND due_at <= $1) OR (state = 'running' AND locked_until <= $1))`
		res, err := tx.ExecContext(ctx, `UPDATE schedules SET state = 'running', attempt = attempt + 1, locked_until = $2, lock_token = $3
			WHERE (id IN (SELECT id FROM schedules WHERE state IN ('pending', 'running') AND state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $4)
			OR id IN (SELECT id FROM schedules WHERE state = 'running' AND locked_until <= $1 ORDER BY locked_until, id LIMIT $4)) AND `+due,
			millis(p.Now), millis(p.LockedUntil), p.Token, p.Limit)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE lock_token = $1 AND state = 'running' ORDER BY due_at`, p.Token)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanSchedule(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// ScheduleClaimPrepare marks up to Limit pending rows due before until as
// prepared and returns them, so one scheduler prepares each row's media
// ahead of its time.
func (s *Store) ScheduleClaimPrepare(ctx context.Context, until, now time.Time, limit int) ([]*Schedule, error) {
	var out []*Schedule
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE state IN ('pending', 'running') AND state = 'pending' AND prepared_at = 0 AND due_at <= $1 ORDER BY due_at LIMIT $2`,
			millis(until), limit)
		if err != nil {
			return err
		}
		var cand []*Schedule
		for rows.Next() {
			r, err := scanSchedule(rows)
			if err != nil {
				rows.Close()
				return err
			}
			cand = append(cand, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range cand {
			res, err := tx.ExecContext(ctx, `UPDATE schedules SET prepared_at = $2 WHERE id = $1 AND state = 'pending' AND prepared_at = 0`, r.ID, millis(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				r.PreparedAt = now
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// ScheduleFinishParams record how a claimed (or pending, for a failure found
// while preparing) schedule ended.
type ScheduleFinishParams struct {
	ID    string
	Token string // the claim's token; empty: the row must still be pending
	// State is done or failed.
	State      string
	ErrStatus  string
	ErrMessage string
	Now        time.Time
	// Then, when set, is inserted in the same transaction (the revoke an
	// expireAfter asks for).
	Then *Schedule
}

// ScheduleFinish ends a schedule. [ErrNotFound] when the row is no longer
// held by p.Token (its lease ran out and another scheduler took it) or, with
// no token, no longer pending (cancelled meanwhile).
func (s *Store) ScheduleFinish(ctx context.Context, p *ScheduleFinishParams) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var res sql.Result
		var err error
		if p.Token != "" {
			res, err = tx.ExecContext(ctx, `UPDATE schedules SET state = $3, error_status = $4, error_message = $5, finished_at = $6, lock_token = '', locked_until = 0
				WHERE id = $1 AND lock_token = $2 AND state = 'running'`, p.ID, p.Token, p.State, p.ErrStatus, p.ErrMessage, millis(p.Now))
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE schedules SET state = $2, error_status = $3, error_message = $4, finished_at = $5
				WHERE id = $1 AND state = 'pending'`, p.ID, p.State, p.ErrStatus, p.ErrMessage, millis(p.Now))
		}
		if err := rowsOne(res, err); err != nil {
			return err
		}
		if p.Then != nil {
			if err := s.ScheduleInsertTx(ctx, tx, p.Then); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
		}
		return nil
	})
}

// ScheduleCountOpen returns how many schedules are pending or running, for /metrics.
func (s *Store) ScheduleCountOpen(ctx context.Context) (int64, error) {
	var n int64
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM schedules WHERE state IN ('pending', 'running')`).Scan(&n)
	return n, err
}

// ScheduleRetryAt gives a claimed schedule back until at: it stays running
// with its lease ending then, when any scheduler may claim it again.
func (s *Store) ScheduleRetryAt(ctx context.Context, id, token string, at time.Time) error {
	return s.execOne(ctx, `UPDATE schedules SET locked_until = $3, lock_token = '' WHERE id = $1 AND lock_token = $2 AND state = 'running'`, id, token, millis(at))
}
