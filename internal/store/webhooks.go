package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Webhook is a stored outbound webhook. Events is the JSON array of event
// types it wants ("[]" or a "*" entry means all). The secrets are kept as
// given ("whsec_…"): signing needs them.
type Webhook struct {
	ID             string
	Instance       string
	Label          string
	URL            string
	Events         string
	Authorization  string
	Enabled        bool
	DisabledReason string
	Secret         string
	// PreviousSecret still signs deliveries until PreviousUntil (rotation grace).
	PreviousSecret string
	PreviousUntil  time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const webhookColumns = `id, instance, label, url, events, authorization_value, enabled, disabled_reason, secret, previous_secret, previous_until, created_at, updated_at`

func scanWebhook(row interface{ Scan(...any) error }) (*Webhook, error) {
	var w Webhook
	var prev, created, updated int64
	if err := row.Scan(&w.ID, &w.Instance, &w.Label, &w.URL, &w.Events, &w.Authorization, &w.Enabled, &w.DisabledReason,
		&w.Secret, &w.PreviousSecret, &prev, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if prev > 0 {
		w.PreviousUntil = fromMillis(prev)
	}
	w.CreatedAt, w.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &w, nil
}

func scanWebhooks(rows *sql.Rows, err error) ([]*Webhook, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// WebhookUpsert stores w by (Instance, Label). A new webhook is inserted
// with w.ID and w.Secret; an existing one keeps its id, secrets and
// created_at, takes the other fields, and w is filled from the stored row.
// It reports whether the webhook was created.
func (s *Store) WebhookUpsert(ctx context.Context, w *Webhook) (created bool, err error) {
	for range 2 {
		res, err := s.Exec(ctx, `UPDATE webhooks SET url = $3, events = $4, authorization_value = $5, enabled = $6, disabled_reason = $7, updated_at = $8 WHERE instance = $1 AND label = $2`,
			w.Instance, w.Label, w.URL, w.Events, w.Authorization, w.Enabled, w.DisabledReason, millis(w.UpdatedAt))
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			got, err := s.WebhookGetByLabel(ctx, w.Instance, w.Label)
			if err != nil {
				return false, err
			}
			*w = *got
			return false, nil
		}
		_, err = s.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			w.ID, w.Instance, w.Label, w.URL, w.Events, w.Authorization, w.Enabled, w.DisabledReason, w.Secret, w.PreviousSecret,
			optMillis(w.PreviousUntil), millis(w.CreatedAt), millis(w.UpdatedAt))
		if isUniqueViolation(err) {
			continue // inserted concurrently: update it
		}
		return err == nil, err
	}
	return false, ErrConflict
}

// WebhookGet returns a webhook by id, or [ErrNotFound].
func (s *Store) WebhookGet(ctx context.Context, id string) (*Webhook, error) {
	return scanWebhook(s.DB.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
}

// WebhookGetByLabel returns an instance's webhook by label, or [ErrNotFound].
func (s *Store) WebhookGetByLabel(ctx context.Context, instance, label string) (*Webhook, error) {
	return scanWebhook(s.DB.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE instance = $1 AND label = $2`, instance, label))
}

// WebhookList returns an instance's webhooks ordered by label.
func (s *Store) WebhookList(ctx context.Context, instance string) ([]*Webhook, error) {
	return scanWebhooks(s.DB.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE instance = $1 ORDER BY label`, instance))
}

// WebhookListEnabledTx returns an instance's enabled webhooks inside tx (the
// event's transaction, so the outbox rows match the configuration the event
// was committed against).
//
// In a PostgreSQL batch of pipelined writes the answer is read once per batch
// (for a raw batch, in BEGIN's round trip, see runRaw) and kept for the
// batch's other writes: pipelined writes never change the webhooks table,
// and the memory is dropped before any other write of the batch runs. Keeping
// it across transactions is the caller's business (the webhooks package
// does, when [Store.SingleWriter]). The returned webhooks may be shared: do
// not modify them.
func (s *Store) WebhookListEnabledTx(ctx context.Context, tx *sql.Tx, instance string) ([]*Webhook, error) {
	l := s.laneOf(tx)
	if s.Dialect != Postgres || l == nil {
		return scanWebhooks(s.TxQuery(ctx, tx, `SELECT `+webhookColumns+` FROM webhooks WHERE instance = $1 AND enabled = $2 ORDER BY label`, instance, true))
	}
	// Only the batch's leader runs its writes: no lock needed.
	if ws, ok := l.pl.hooks[instance]; ok {
		return ws, nil
	}
	// Straight on tx, without sending the statements queued so far:
	// pipelined writes never change the webhooks table.
	ws, err := scanWebhooks(tx.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE instance = $1 AND enabled = $2 ORDER BY label`, instance, true))
	if err != nil {
		return nil, err
	}
	if l.pl.hooks == nil {
		l.pl.hooks = make(map[string][]*Webhook)
	}
	l.pl.hooks[instance] = ws
	return ws, nil
}

// WebhookDelete removes an instance's webhook by label and discards its
// deliveries still waiting to be sent; [ErrNotFound] when there is none.
func (s *Store) WebhookDelete(ctx context.Context, instance, label string, now time.Time) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var id string
		if err := tx.QueryRowContext(ctx, `SELECT id FROM webhooks WHERE instance = $1 AND label = $2`, instance, label).Scan(&id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = $2, last_error = $3, finalized_at = $4 WHERE webhook_id = $1 AND state IN ('pending', 'retryable')`,
			id, "discarded", "webhook deleted", millis(now)); err != nil {
			return err
		}
		return nil
	})
}

// WebhookRotateSecret makes secret the webhook's signing secret; the old one
// keeps signing until prevUntil.
func (s *Store) WebhookRotateSecret(ctx context.Context, id, secret string, prevUntil, now time.Time) error {
	return rowsOne(s.Exec(ctx, `UPDATE webhooks SET previous_secret = secret, previous_until = $3, secret = $2, updated_at = $4 WHERE id = $1`,
		id, secret, millis(prevUntil), millis(now)))
}

// WebhookDisable turns a webhook off, saying why (a receiver's 410 Gone).
func (s *Store) WebhookDisable(ctx context.Context, id, reason string, now time.Time) error {
	return rowsOne(s.Exec(ctx, `UPDATE webhooks SET enabled = $2, disabled_reason = $3, updated_at = $4 WHERE id = $1`, id, false, reason, millis(now)))
}

func optMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return millis(t)
}
