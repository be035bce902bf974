package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// SandboxStatus is what the sandbox engine recorded instead of sending.
type SandboxStatus struct {
	Instance      string
	MessageID     string
	Type          string
	Message       string // the waE2E.Message as protojson (rows recorded before Proto)
	Proto         []byte // the waE2E.Message in protobuf's binary form
	MediaMimetype string
	MediaBytes    int64
	MediaSHA256   string // hex
	Revoked       bool
	CreatedAt     time.Time
}

// SandboxStatusInsert records a message the sandbox would have sent.
func (s *Store) SandboxStatusInsert(ctx context.Context, st *SandboxStatus) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.SandboxStatusInsertTx(ctx, tx, st) })
}

// SandboxStatusInsertTx is SandboxStatusInsert inside tx.
func (s *Store) SandboxStatusInsertTx(ctx context.Context, tx *sql.Tx, st *SandboxStatus) error {
	_, err := s.TxExec(ctx, tx, sandboxInsert.one, sandboxArgs(st)...)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// SandboxStatusRecord records a message the sandbox sent; a message id
// already recorded is left as it is (WhatsApp takes a repeated id as the same
// message). When ctx defers writes ([WithDeferred]: the core's publish), the
// record is queued there and commits in the transaction of the status and
// its status.published event; else it commits on its own.
func (s *Store) SandboxStatusRecord(ctx context.Context, st *SandboxStatus) error {
	write := func(ctx context.Context, tx *sql.Tx) error {
		// ON CONFLICT, unlike a failed INSERT, leaves a PostgreSQL
		// transaction usable.
		_, err := s.TxExec(ctx, tx, sandboxRecord.one, sandboxArgs(st)...)
		return err
	}
	if deferWrite(ctx, write) {
		return nil
	}
	return s.Write(ctx, write)
}

var (
	sandboxCols  = []string{"instance", "message_id", "type", "message", "message_proto", "media_mimetype", "media_bytes", "media_sha256", "revoked", "created_at"}
	sandboxKinds = []colKind{colText, colText, colText, colText, colText, colText, colInt, colText, colBool, colInt}

	sandboxInsert = newInsert("sandbox_statuses", sandboxCols, sandboxKinds, "")
	sandboxRecord = newInsert("sandbox_statuses", sandboxCols, sandboxKinds, ` ON CONFLICT (instance, message_id) DO NOTHING`)
)

func sandboxArgs(st *SandboxStatus) []any {
	return []any{st.Instance, st.MessageID, st.Type, st.Message, base64.StdEncoding.EncodeToString(st.Proto),
		st.MediaMimetype, st.MediaBytes, st.MediaSHA256, st.Revoked, millis(st.CreatedAt)}
}

// SandboxStatusMarkRevoked marks a recorded status revoked; [ErrNotFound] when unknown.
func (s *Store) SandboxStatusMarkRevoked(ctx context.Context, instance, messageID string) error {
	return s.execOne(ctx, `UPDATE sandbox_statuses SET revoked = TRUE WHERE instance = $1 AND message_id = $2`, instance, messageID)
}

// SandboxStatusList returns an instance's recorded statuses, newest first.
func (s *Store) SandboxStatusList(ctx context.Context, instance string, limit int) ([]*SandboxStatus, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT instance, message_id, type, message, message_proto, media_mimetype, media_bytes, media_sha256, revoked, created_at FROM sandbox_statuses WHERE instance = $1 ORDER BY created_at DESC, message_id DESC LIMIT $2`, instance, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*SandboxStatus
	for rows.Next() {
		var st SandboxStatus
		var created int64
		var proto string
		if err := rows.Scan(&st.Instance, &st.MessageID, &st.Type, &st.Message, &proto, &st.MediaMimetype, &st.MediaBytes, &st.MediaSHA256, &st.Revoked, &created); err != nil {
			return nil, err
		}
		if st.Proto, err = base64.StdEncoding.DecodeString(proto); err != nil {
			return nil, fmt.Errorf("sandbox status %s: message_proto: %w", st.MessageID, err)
		}
		st.CreatedAt = fromMillis(created)
		out = append(out, &st)
	}
	return out, rows.Err()
}

// SandboxStatusCount counts an instance's recorded statuses (tests and benchmarks).
func (s *Store) SandboxStatusCount(ctx context.Context, instance string) (int, error) {
	var n int
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sandbox_statuses WHERE instance = $1`, instance).Scan(&n)
	return n, err
}

// SandboxStatusMedia returns the media columns of one recorded status
// (GET /api/sandbox/:instance/media/:messageId); ErrNotFound when there is
// no such status.
func (s *Store) SandboxStatusMedia(ctx context.Context, instance, messageID string) (*SandboxStatus, error) {
	st := SandboxStatus{Instance: instance, MessageID: messageID}
	err := s.DB.QueryRowContext(ctx, `SELECT type, media_mimetype, media_bytes, media_sha256 FROM sandbox_statuses WHERE instance = $1 AND message_id = $2`, instance, messageID).
		Scan(&st.Type, &st.MediaMimetype, &st.MediaBytes, &st.MediaSHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}
