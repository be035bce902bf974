package store

import (
	"context"
	"fmt"
)

// migrationLockKey is the PostgreSQL advisory lock every statusflow process
// takes around schema changes (its own migrations, whatsmeow's upgrade):
// replicas starting together then apply each migration once, one after the
// other, instead of racing on CREATE TABLE. The number is arbitrary and
// fixed ("statusfl" in ASCII).
const migrationLockKey int64 = 0x7374617475736668

// Exclusive runs fn while holding the schema lock: on PostgreSQL a
// session advisory lock (pg_advisory_lock: waits for the process holding
// it, released if that process dies with its connection); on SQLite fn
// simply runs, since one process owns the file (see app's data dir lock).
func (s *Store) Exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.Dialect != Postgres {
		return fn(ctx)
	}
	c, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("schema lock: %w", err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
	return fn(ctx)
}
