package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// InboundHook is a stored inbound hook: an URL outside systems POST signed
// node inputs to.
type InboundHook struct {
	ID             string
	Instance       string
	Node           string
	Description    string
	Secret         string
	PreviousSecret string
	PreviousUntil  time.Time
	CreatedAt      time.Time
}

const inboundColumns = `id, instance, node, description, secret, previous_secret, previous_until, created_at`

func scanInbound(row interface{ Scan(...any) error }) (*InboundHook, error) {
	var h InboundHook
	var prev, created int64
	if err := row.Scan(&h.ID, &h.Instance, &h.Node, &h.Description, &h.Secret, &h.PreviousSecret, &prev, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if prev > 0 {
		h.PreviousUntil = fromMillis(prev)
	}
	h.CreatedAt = fromMillis(created)
	return &h, nil
}

// InboundHookInsert stores a new inbound hook.
func (s *Store) InboundHookInsert(ctx context.Context, h *InboundHook) error {
	_, err := s.Exec(ctx, `INSERT INTO inbound_hooks (`+inboundColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		h.ID, h.Instance, h.Node, h.Description, h.Secret, h.PreviousSecret, optMillis(h.PreviousUntil), millis(h.CreatedAt))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// InboundHookGet returns an inbound hook by id, or [ErrNotFound].
func (s *Store) InboundHookGet(ctx context.Context, id string) (*InboundHook, error) {
	return scanInbound(s.DB.QueryRowContext(ctx, `SELECT `+inboundColumns+` FROM inbound_hooks WHERE id = $1`, id))
}

// InboundHookList returns an instance's inbound hooks, oldest first.
func (s *Store) InboundHookList(ctx context.Context, instance string) ([]*InboundHook, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+inboundColumns+` FROM inbound_hooks WHERE instance = $1 ORDER BY created_at, id`, instance)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*InboundHook
	for rows.Next() {
		h, err := scanInbound(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// InboundHookDelete removes an instance's inbound hook; [ErrNotFound] when there is none.
func (s *Store) InboundHookDelete(ctx context.Context, instance, id string) error {
	return s.execOne(ctx, `DELETE FROM inbound_hooks WHERE instance = $1 AND id = $2`, instance, id)
}

// InboundHookRotateSecret makes secret the hook's secret; the old one is
// still accepted until prevUntil.
func (s *Store) InboundHookRotateSecret(ctx context.Context, instance, id, secret string, prevUntil time.Time) error {
	return s.execOne(ctx, `UPDATE inbound_hooks SET previous_secret = secret, previous_until = $4, secret = $3 WHERE instance = $1 AND id = $2`,
		instance, id, secret, millis(prevUntil))
}

// InboundSeenInsert records that a hook accepted a webhook-id until
// expiresAt; [ErrConflict] when it was already recorded (a replay).
func (s *Store) InboundSeenInsert(ctx context.Context, hookID, messageID string, expiresAt time.Time) error {
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO inbound_seen (hook_id, message_id, expires_at) VALUES ($1, $2, $3)`, hookID, messageID, millis(expiresAt))
		return err
	})
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// InboundSeenDelete forgets a webhook-id, so the sender may retry a request
// that failed for a reason that can pass.
func (s *Store) InboundSeenDelete(ctx context.Context, hookID, messageID string) error {
	_, err := s.Exec(ctx, `DELETE FROM inbound_seen WHERE hook_id = $1 AND message_id = $2`, hookID, messageID)
	return err
}

// InboundSeenPrune removes webhook-ids whose expiry has passed.
func (s *Store) InboundSeenPrune(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.Exec(ctx, `DELETE FROM inbound_seen WHERE expires_at < $1`, millis(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
