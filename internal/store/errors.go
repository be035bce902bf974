package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// IsDriverError reports whether err comes from the database or its driver
// (a PostgreSQL error with its SQLSTATE, an SQLite error, a broken
// connection). Such text never goes into an answer: front doors log it with
// the trace id and answer a generic message.
func IsDriverError(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	var se *sqlite.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &pe) || errors.As(err, &se) || errors.As(err, &ce) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone)
}

// sqliteFull is SQLite's result code for a full disk (SQLITE_FULL).
const sqliteFull = 13

// IsDiskFull reports whether err means the disk (or the database's quota)
// is full: ENOSPC or EDQUOT from the file system, SQLITE_FULL, or
// PostgreSQL's disk_full (SQLSTATE 53100).
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteFull
}

// writeProbeKey is the settings row /readyz rewrites to prove the database
// accepts writes (a full disk or a read-only database still answers pings).
const writeProbeKey = "readyz_write_probe"

// WriteProbe pings the database and writes one small row, so readiness
// reports a database that can no longer write (full disk, read-only
// replica, lost write permission), not only one that is unreachable.
func (s *Store) WriteProbe(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	_, err := s.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		writeProbeKey, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	return nil
}
