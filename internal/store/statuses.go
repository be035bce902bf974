package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Status is a published status, kept so it can be deleted and traced.
type Status struct {
	Instance  string
	MessageID string
	Type      string
	Source    string
	TraceID   string
	Origin    string // JSON
	CreatedAt time.Time
	RevokedAt *time.Time
	// Unconfirmed: sent, but WhatsApp did not acknowledge it in time.
	Unconfirmed bool
}

// StatusInsert records a published status.
func (s *Store) StatusInsert(ctx context.Context, st *Status) error {
	origin := st.Origin
	if origin == "" {
		origin = "{}"
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.TxExec(ctx, tx, `INSERT INTO statuses (instance, message_id, type, source, trace_id, origin, created_at, confirmed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			st.Instance, st.MessageID, st.Type, st.Source, st.TraceID, origin, millis(st.CreatedAt), !st.Unconfirmed)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		return err
	})
}

// StatusGet returns a status by instance and message id, or [ErrNotFound].
func (s *Store) StatusGet(ctx context.Context, instance, messageID string) (*Status, error) {
	var st Status
	var created int64
	var revoked sql.NullInt64
	var confirmed bool
	err := s.DB.QueryRowContext(ctx, `SELECT instance, message_id, type, source, trace_id, origin, created_at, revoked_at, confirmed FROM statuses WHERE instance = $1 AND message_id = $2`, instance, messageID).
		Scan(&st.Instance, &st.MessageID, &st.Type, &st.Source, &st.TraceID, &st.Origin, &created, &revoked, &confirmed)
	st.Unconfirmed = !confirmed
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st.CreatedAt = fromMillis(created)
	if revoked.Valid {
		t := fromMillis(revoked.Int64)
		st.RevokedAt = &t
	}
	return &st, nil
}

// StatusMarkRevoked records that a status was revoked for everyone.
func (s *Store) StatusMarkRevoked(ctx context.Context, instance, messageID string, at time.Time) error {
	return s.execOne(ctx, `UPDATE statuses SET revoked_at = $3 WHERE instance = $1 AND message_id = $2`, instance, messageID, millis(at))
}

// StatusDelete forgets a status (delete for me).
func (s *Store) StatusDelete(ctx context.Context, instance, messageID string) error {
	return s.execOne(ctx, `DELETE FROM statuses WHERE instance = $1 AND message_id = $2`, instance, messageID)
}

var statusRecord = newInsert("statuses",
	[]string{"instance", "message_id", "type", "source", "trace_id", "origin", "created_at", "confirmed"},
	[]colKind{colText, colText, colText, colText, colText, colText, colInt, colBool}, ` ON CONFLICT (instance, message_id) DO NOTHING`)

// StatusRecordTx records a published status inside tx; a status already
// recorded under the same id (a retried command) is left as it is.
func (s *Store) StatusRecordTx(ctx context.Context, tx *sql.Tx, st *Status) error {
	origin := st.Origin
	if origin == "" {
		origin = "{}"
	}
	_, err := s.TxExec(ctx, tx, statusRecord.one,
		st.Instance, st.MessageID, st.Type, st.Source, st.TraceID, origin, millis(st.CreatedAt), !st.Unconfirmed)
	return err
}
