package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Delivery is a row of the webhook outbox. Its ID is the stable webhook-id.
type Delivery struct {
	ID          string
	WebhookID   string
	Instance    string
	EventID     string
	EventType   string
	EventTime   time.Time
	Body        string
	State       string
	Attempt     int
	MaxAttempts int
	ScheduledAt time.Time
	LockedUntil time.Time
	LastStatus  int
	LastError   string
	CreatedAt   time.Time
	FinalizedAt time.Time
	// Label is the webhook's label, filled by [Store.OutboxList] ("" when the
	// webhook was deleted).
	Label string
	// Attempts are filled by [Store.OutboxList], oldest first.
	Attempts []*DeliveryAttempt
}

// DeliveryAttempt is one try of a delivery.
type DeliveryAttempt struct {
	Attempt    int
	At         time.Time
	StatusCode int
	Latency    time.Duration
	Error      string
}

var outboxInsert = newInsert("webhook_deliveries",
	[]string{"id", "webhook_id", "instance", "event_id", "event_type", "event_time", "body", "state", "attempt", "max_attempts", "scheduled_at", "created_at"},
	[]colKind{colText, colText, colText, colText, colText, colInt, colText, colText, colInt, colInt, colInt, colInt}, "")

// OutboxInsertTx writes a delivery inside tx (the event's transaction).
func (s *Store) OutboxInsertTx(ctx context.Context, tx *sql.Tx, d *Delivery) error {
	_, err := s.TxExec(ctx, tx, outboxInsert.one,
		d.ID, d.WebhookID, d.Instance, d.EventID, d.EventType, millis(d.EventTime), d.Body, d.State, d.Attempt, d.MaxAttempts, millis(d.ScheduledAt), millis(d.CreatedAt))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// OutboxClaimDueParams are the arguments of [Store.OutboxClaimDue].
type OutboxClaimDueParams struct {
	// Now decides what is due.
	Now time.Time
	// LockedUntil is the lease: past it, a row still "delivering" is due again
	// (its worker is presumed dead).
	LockedUntil time.Time
	// Token identifies this claim; finishing a delivery requires it.
	Token string
	// Limit is the most rows claimed.
	Limit int
}

// ClaimedDelivery is a claimed outbox row with what sending needs from its
// webhook. Webhook is nil when the webhook was deleted.
type ClaimedDelivery struct {
	Delivery
	Webhook *Webhook
}

// OutboxClaimDue moves up to Limit due rows — pending or retryable whose
// time has come — to "delivering" under params.Token, increments their
// attempt, and returns them. The state test is repeated on the rows being
// updated, so two claimers (processes, or PostgreSQL sessions racing on the
// same rows) never both get a row. Rows whose lease expired are made due by
// [Store.OutboxRescue].
func (s *Store) OutboxClaimDue(ctx context.Context, p *OutboxClaimDueParams) ([]*ClaimedDelivery, error) {
	var out []*ClaimedDelivery
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = nil
		const due = `state IN ('pending', 'retryable') AND scheduled_at <= $1`
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'delivering', attempt = attempt + 1, locked_until = $2, lock_token = $3
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE `+due+` ORDER BY scheduled_at LIMIT $4) AND `+due,
			millis(p.Now), millis(p.LockedUntil), p.Token, p.Limit)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT d.id, d.webhook_id, d.instance, d.event_id, d.event_type, d.event_time, d.body, d.state, d.attempt, d.max_attempts,
			d.scheduled_at, d.locked_until, d.created_at, w.id, w.url, w.authorization_value, w.enabled, w.secret, w.previous_secret, w.previous_until
			FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.lock_token = $1 AND d.state = 'delivering' ORDER BY d.scheduled_at`, p.Token)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c ClaimedDelivery
			var evTime, sched, locked, created int64
			var wid, url, authz, secret, prevSecret sql.NullString
			var enabled sql.NullBool
			var prevUntil sql.NullInt64
			if err := rows.Scan(&c.ID, &c.WebhookID, &c.Instance, &c.EventID, &c.EventType, &evTime, &c.Body, &c.State, &c.Attempt, &c.MaxAttempts,
				&sched, &locked, &created, &wid, &url, &authz, &enabled, &secret, &prevSecret, &prevUntil); err != nil {
				return err
			}
			c.EventTime, c.ScheduledAt, c.LockedUntil, c.CreatedAt = fromMillis(evTime), fromMillis(sched), fromMillis(locked), fromMillis(created)
			if wid.Valid {
				c.Webhook = &Webhook{ID: wid.String, Instance: c.Instance, URL: url.String, Authorization: authz.String, Enabled: enabled.Bool,
					Secret: secret.String, PreviousSecret: prevSecret.String}
				if prevUntil.Int64 > 0 {
					c.Webhook.PreviousUntil = fromMillis(prevUntil.Int64)
				}
			}
			out = append(out, &c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// OutboxRescue makes rows still "delivering" after their lease (their
// worker died: a crash, kill -9, a lost connection) retryable at once. The
// attempt they were on stays counted. It returns how many were rescued.
func (s *Store) OutboxRescue(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'retryable', scheduled_at = $1, lock_token = '', locked_until = 0,
			last_error = 'lease expired: the worker delivering it stopped' WHERE state = 'delivering' AND locked_until <= $1`, millis(now))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// OutboxFinishParams record the outcome of one claimed attempt.
type OutboxFinishParams struct {
	ID    string
	Token string
	// State is the new state: delivered, retryable, failed or discarded.
	State string
	// ScheduledAt is when a retryable row is due again.
	ScheduledAt time.Time
	// Attempt is the attempt just made; nil when no request was sent (the
	// webhook was deleted or disabled).
	Attempt *DeliveryAttempt
	Now     time.Time
}

// OutboxFinish records an attempt and moves a claimed row to its new state,
// in one transaction. [ErrNotFound] means the claim was lost (the lease
// expired and the row was rescued or claimed again); nothing is written then.
func (s *Store) OutboxFinish(ctx context.Context, p *OutboxFinishParams) error {
	lost, err := s.OutboxFinishMany(ctx, []*OutboxFinishParams{p})
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return ErrNotFound
	}
	return nil
}

// OutboxFinishMany records several outcomes in one transaction, like
// river's batch completer: one commit for many deliveries. It returns the
// ids whose claim was lost; nothing is written for those.
func (s *Store) OutboxFinishMany(ctx context.Context, ps []*OutboxFinishParams) (lost []string, err error) {
	err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		lost = nil
		return outboxFinishTx(ctx, tx, ps, &lost)
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

func outboxFinishTx(ctx context.Context, tx *sql.Tx, ps []*OutboxFinishParams, lost *[]string) error {
	for _, p := range ps {
		var final int64
		if p.State != "retryable" {
			final = millis(p.Now)
		}
		code, errText := 0, ""
		if p.Attempt != nil {
			code, errText = p.Attempt.StatusCode, p.Attempt.Error
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = $3, scheduled_at = $4, locked_until = 0, lock_token = '', last_status = $5, last_error = $6, finalized_at = $7
			WHERE id = $1 AND lock_token = $2 AND state = 'delivering'`, p.ID, p.Token, p.State, millis(p.ScheduledAt), code, errText, final)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			*lost = append(*lost, p.ID)
			continue
		}
		if a := p.Attempt; a != nil {
			// A replayed row's attempt numbers continue, so (id, attempt) is unique;
			// the guard keeps a rare duplicate from failing the batch.
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, latency_ms, error)
				SELECT CAST($1 AS TEXT), CAST($2 AS INTEGER), CAST($3 AS BIGINT), CAST($4 AS INTEGER), CAST($5 AS BIGINT), CAST($6 AS TEXT) WHERE NOT EXISTS (SELECT 1 FROM webhook_attempts WHERE delivery_id = $1 AND attempt = $2)`,
				p.ID, a.Attempt, millis(a.At), a.StatusCode, a.Latency.Milliseconds(), a.Error); err != nil {
				return err
			}
		}
	}
	return nil
}

// OutboxListParams filter [Store.OutboxList]. Zero fields do not filter.
type OutboxListParams struct {
	Instance string
	State    string
	// WebhookLabel keeps deliveries of the instance's webhook with that label.
	WebhookLabel string
	// Event matches an event type or an event id.
	Event string
	// ID keeps one delivery.
	ID string
	// Limit defaults to 100, at most 1000.
	Limit int
}

// OutboxList returns an instance's deliveries newest first, with their
// attempts and webhook labels.
func (s *Store) OutboxList(ctx context.Context, p *OutboxListParams) ([]*Delivery, error) {
	q := `SELECT d.id, d.webhook_id, d.instance, d.event_id, d.event_type, d.event_time, d.body, d.state, d.attempt, d.max_attempts,
		d.scheduled_at, d.locked_until, d.last_status, d.last_error, d.created_at, d.finalized_at, COALESCE(w.label, '')
		FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.instance = $1`
	args := []any{p.Instance}
	add := func(cond string, v any) {
		args = append(args, v)
		q += " AND " + strings.ReplaceAll(cond, "?", "$"+itoa(len(args)))
	}
	if p.State != "" {
		add("d.state = ?", p.State)
	}
	if p.WebhookLabel != "" {
		add("w.label = ?", p.WebhookLabel)
	}
	if p.Event != "" {
		add("(d.event_type = ? OR d.event_id = ?)", p.Event)
	}
	if p.ID != "" {
		add("d.id = ?", p.ID)
	}
	args = append(args, pageLimit(p.Limit))
	q += " ORDER BY d.created_at DESC, d.id DESC LIMIT $" + itoa(len(args))
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Delivery
	byID := map[string]*Delivery{}
	for rows.Next() {
		var d Delivery
		var evTime, sched, locked, created, final int64
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.Instance, &d.EventID, &d.EventType, &evTime, &d.Body, &d.State, &d.Attempt, &d.MaxAttempts,
			&sched, &locked, &d.LastStatus, &d.LastError, &created, &final, &d.Label); err != nil {
			return nil, err
		}
		d.EventTime, d.ScheduledAt, d.CreatedAt = fromMillis(evTime), fromMillis(sched), fromMillis(created)
		if locked > 0 {
			d.LockedUntil = fromMillis(locked)
		}
		if final > 0 {
			d.FinalizedAt = fromMillis(final)
		}
		d.Attempts = []*DeliveryAttempt{}
		out = append(out, &d)
		byID[d.ID] = &d
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	ph := make([]string, len(out))
	ids := make([]any, len(out))
	for i, d := range out {
		ph[i], ids[i] = "$"+itoa(i+1), d.ID
	}
	arows, err := s.DB.QueryContext(ctx, `SELECT delivery_id, attempt, at, status_code, latency_ms, error FROM webhook_attempts WHERE delivery_id IN (`+strings.Join(ph, ", ")+`) ORDER BY delivery_id, attempt`, ids...)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var id string
		var a DeliveryAttempt
		var at, lat int64
		if err := arows.Scan(&id, &a.Attempt, &at, &a.StatusCode, &lat, &a.Error); err != nil {
			return nil, err
		}
		a.At, a.Latency = fromMillis(at), time.Duration(lat)*time.Millisecond
		if d := byID[id]; d != nil {
			d.Attempts = append(d.Attempts, &a)
		}
	}
	return out, arows.Err()
}

// OutboxReplay makes an instance's delivery due now with extraAttempts more
// attempts allowed. [ErrNotFound] when there is no such delivery,
// [ErrConflict] when it is being delivered right now.
func (s *Store) OutboxReplay(ctx context.Context, instance, id string, extraAttempts int, now time.Time) error {
	res, err := s.Exec(ctx, `UPDATE webhook_deliveries SET state = 'pending', scheduled_at = $3, max_attempts = attempt + $4, finalized_at = 0
		WHERE instance = $1 AND id = $2 AND state <> 'delivering'`, instance, id, millis(now), extraAttempts)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var state string
	err = s.DB.QueryRowContext(ctx, `SELECT state FROM webhook_deliveries WHERE instance = $1 AND id = $2`, instance, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return ErrConflict
}
