package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// SentMessagePut keeps the binary protobuf of a message the whatsmeow engine
// sends, and forgets those older than keepSince. A message id sent again
// (a retried command) keeps its first body: it is the same message.
func (s *Store) SentMessagePut(ctx context.Context, instance, messageID string, body []byte, at, keepSince time.Time) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.TxExec(ctx, tx, `INSERT INTO wa_sent_messages (instance, message_id, message_proto, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (instance, message_id) DO NOTHING`,
			instance, messageID, base64.StdEncoding.EncodeToString(body), millis(at)); err != nil {
			return err
		}
		_, err := s.TxExec(ctx, tx, `DELETE FROM wa_sent_messages WHERE created_at < $1`, millis(keepSince))
		return err
	})
}

// SentMessageGet returns the body kept by [Store.SentMessagePut], or [ErrNotFound].
func (s *Store) SentMessageGet(ctx context.Context, instance, messageID string) ([]byte, error) {
	var b64 string
	err := s.DB.QueryRowContext(ctx, `SELECT message_proto FROM wa_sent_messages WHERE instance = $1 AND message_id = $2`, instance, messageID).Scan(&b64)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}

// SettingPut sets a setting, replacing its value.
func (s *Store) SettingPut(ctx context.Context, key, value string) error {
	_, err := s.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// SandboxAudience is the simulated audience of a sandbox instance.
type SandboxAudience struct {
	Mode       string
	Recipients []string
}

// SandboxAudienceGet returns an instance's simulated audience, or
// [ErrNotFound]. Audiences are kept in memory while every change reaches
// this process (see audience_cache.go). The result is the caller's.
func (s *Store) SandboxAudienceGet(ctx context.Context, instance string) (*SandboxAudience, error) {
	s.audiencesKept()
	a, ok, gen := s.audiences.get(instance)
	if !ok {
		var err error
		a, err = s.sandboxAudienceRead(ctx, instance)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		s.audiences.put(gen, instance, a)
	}
	if a == nil {
		return nil, ErrNotFound
	}
	return &SandboxAudience{Mode: a.Mode, Recipients: append([]string(nil), a.Recipients...)}, nil
}

func (s *Store) sandboxAudienceRead(ctx context.Context, instance string) (*SandboxAudience, error) {
	var a SandboxAudience
	var list string
	err := s.DB.QueryRowContext(ctx, `SELECT mode, recipients FROM sandbox_audiences WHERE instance = $1`, instance).Scan(&a.Mode, &list)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(list), &a.Recipients); err != nil {
		return nil, err
	}
	return &a, nil
}

// SandboxAudiencePut sets an instance's simulated audience; every replica
// reads the new one from then on (see audience_cache.go).
func (s *Store) SandboxAudiencePut(ctx context.Context, instance string, a *SandboxAudience) error {
	list, err := json.Marshal(append([]string{}, a.Recipients...))
	if err != nil {
		return err
	}
	defer s.audiences.invalidate(instance) // after the commit (or failure)
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_audiences (instance, mode, recipients) VALUES ($1, $2, $3)
		ON CONFLICT (instance) DO UPDATE SET mode = excluded.mode, recipients = excluded.recipients`, instance, a.Mode, string(list)); err != nil {
			return err
		}
		return s.notifyAudience(ctx, tx, instance)
	})
}
