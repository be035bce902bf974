package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Instance is a stored instance. The token itself is never stored, only its hash.
type Instance struct {
	Name      string
	Engine    string
	TokenHash string
	DeviceJID string
	State     string
	CreatedAt time.Time
}

const instanceColumns = `name, engine, token_hash, device_jid, state, created_at`

func scanInstance(row interface{ Scan(...any) error }) (*Instance, error) {
	var in Instance
	var created int64
	if err := row.Scan(&in.Name, &in.Engine, &in.TokenHash, &in.DeviceJID, &in.State, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	in.CreatedAt = fromMillis(created)
	return &in, nil
}

// InstanceInsert stores a new instance; [ErrConflict] when the name (or token) is taken.
func (s *Store) InstanceInsert(ctx context.Context, in *Instance) error {
	_, err := s.Exec(ctx, `INSERT INTO instances (`+instanceColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		in.Name, in.Engine, in.TokenHash, in.DeviceJID, in.State, millis(in.CreatedAt))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// InstanceGetByName returns the named instance or [ErrNotFound].
func (s *Store) InstanceGetByName(ctx context.Context, name string) (*Instance, error) {
	return scanInstance(s.DB.QueryRowContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE name = $1`, name))
}

// InstanceGetByTokenHash returns the instance whose token hashes to hash, or [ErrNotFound].
func (s *Store) InstanceGetByTokenHash(ctx context.Context, hash string) (*Instance, error) {
	return scanInstance(s.DB.QueryRowContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE token_hash = $1`, hash))
}

// InstanceList returns every instance ordered by name.
func (s *Store) InstanceList(ctx context.Context) ([]*Instance, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+instanceColumns+` FROM instances ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// InstanceSetDevice records the linked device's JID ("" after logout).
func (s *Store) InstanceSetDevice(ctx context.Context, name, jid string) error {
	return s.execOne(ctx, `UPDATE instances SET device_jid = $2 WHERE name = $1`, name, jid)
}

// InstanceSetState records the last known connection state.
func (s *Store) InstanceSetState(ctx context.Context, name, state string) error {
	return s.execOne(ctx, `UPDATE instances SET state = $2 WHERE name = $1`, name, state)
}

// InstanceDelete removes the instance and its recorded statuses.
func (s *Store) InstanceDelete(ctx context.Context, name string) error {
	defer s.audiences.invalidate(name) // after the commit (or failure)
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		// Everything that belongs to the instance goes with it, so a new instance
		// of the same name starts clean (no inherited webhooks or event log).
		for _, q := range []string{
			`DELETE FROM statuses WHERE instance = $1`,
			`DELETE FROM sandbox_statuses WHERE instance = $1`,
			`DELETE FROM sandbox_audiences WHERE instance = $1`,
			`DELETE FROM wa_sent_messages WHERE instance = $1`,
			`DELETE FROM events WHERE instance = $1`,
			`DELETE FROM idempotency_keys WHERE instance = $1`,
			`DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE instance = $1)`,
			`DELETE FROM webhook_deliveries WHERE instance = $1`,
			`DELETE FROM webhooks WHERE instance = $1`,
			`DELETE FROM inbound_seen WHERE hook_id IN (SELECT id FROM inbound_hooks WHERE instance = $1)`,
			`DELETE FROM inbound_hooks WHERE instance = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return s.notifyAudience(ctx, tx, name)
	})
}

func (s *Store) execOne(ctx context.Context, q string, args ...any) error {
	return rowsOne(s.Exec(ctx, q, args...))
}

// rowsOne is [ErrNotFound] when a statement changed no row.
func rowsOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SettingGet returns a setting's value or [ErrNotFound].
func (s *Store) SettingGet(ctx context.Context, key string) (string, error) {
	var v string
	err := s.DB.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

// SettingInsert stores a setting once; [ErrConflict] when it exists, so two
// processes starting together agree on the first value.
func (s *Store) SettingInsert(ctx context.Context, key, value string) error {
	_, err := s.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)`, key, value)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}
