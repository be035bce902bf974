// Package store keeps statusflow's data in SQLite (the embedded default) or
// PostgreSQL. One set of portable SQL serves both; whatsmeow's own sqlstore
// tables live in the same database.
//
// Methods follow river's driver naming, NounVerb(ctx, params), so related
// calls sort together.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite" // registers "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL flavour, as whatsmeow's sqlstore expects it.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// pgConns is the PostgreSQL pool's size: the writer lanes' connections and
// 8 for reads, which are short (a request waits its turn for one in Go, far
// cheaper than another backend competing for the CPUs), and max_connections
// is shared with every other client of the server.
const pgConns = pgLanes + 8

// ErrNotFound is returned by Get methods when no row matches.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Insert methods when a unique key is taken.
var ErrConflict = errors.New("store: already exists")

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the database handle shared by every package's repository methods.
type Store struct {
	DB      *sql.DB
	Dialect Dialect

	lanes []*lane // group commit, see Write
	stats writeCounters
	stmts sync.Map // query → *sql.Stmt

	stopCheckpoints func()

	seqMu   sync.Mutex
	lastSeq map[string]int64 // SQLite: the last event seq per instance, see nextSeq
	ord     atomic.Int64     // PostgreSQL: event ranks outside a lane's batch, see nextOrd

	walLong  atomic.Bool   // the WAL is past walLimit
	commits  atomic.Uint64 // group-commit transactions committed, see Commits
	walLimit atomic.Int64  // frames: walRestartFrames (tests set less)
	path     string        // SQLite: the database file

	pgConfig  *pgx.ConnConfig // PostgreSQL: the audiences' listener connects with it
	audiences audienceCache   // see audience_cache.go
}

// Open connects to databaseURL — a `postgres://` URL, or empty for a SQLite
// file `statusflow.db` in dataDir — and applies pending migrations.
func Open(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	var (
		db         *sql.DB
		dialect    Dialect
		sqlitePath string
		pgCfg      *pgx.ConnConfig
		err        error
	)
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		dialect = Postgres
		var cfg *pgx.ConnConfig
		if cfg, err = pgx.ParseConfig(databaseURL); err == nil {
			pgCfg = cfg.Copy()
			cfg.Tracer = pgTracer{} // queries join the caller's trace
			db = stdlib.OpenDB(*cfg)
			db.SetMaxOpenConns(pgConns)
			// Keep them all: database/sql keeps 2 idle by default, so under
			// load every burst of reads opened connections and closed them
			// again, each a new PostgreSQL backend (a fork, catalog caches
			// warmed again, every statement prepared again).
			db.SetMaxIdleConns(pgConns)
			// An idle server gives them back (max_connections is shared
			// with every other client of the database server).
			db.SetConnMaxIdleTime(time.Minute)
		}
	default:
		dialect = SQLite
		path := databaseURL
		if path == "" {
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return nil, fmt.Errorf("STATUSFLOW_DATA_DIR %q: %w", dataDir, err)
			}
			path = filepath.Join(dataDir, "statusflow.db")
		}
		path = strings.TrimPrefix(strings.TrimPrefix(path, "sqlite://"), "file:")
		sqlitePath = path
		db, err = sql.Open("sqlite", sqliteDSN(path))
		if err == nil {
			// One writer at a time is SQLite's model; a small pool lets readers
			// run beside it under WAL, and busy_timeout makes writers queue.
			db.SetMaxOpenConns(8)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	s := &Store{DB: db, Dialect: dialect, path: sqlitePath}
	if dialect == Postgres {
		s.pgConfig = pgCfg
	} else {
		s.audiences.valid = true // one process owns the file: every change is this process's
	}
	s.lanes = []*lane{new(lane)}
	if dialect == Postgres {
		for range pgLanes - 1 {
			s.lanes = append(s.lanes, new(lane))
		}
		for _, l := range s.lanes {
			l.pl.done = doneTx(db)
		}
	}
	s.walLimit.Store(walRestartFrames)
	if err := s.Exclusive(ctx, s.migrate); err != nil {
		db.Close()
		return nil, err
	}
	if dialect == SQLite {
		s.startCheckpoints()
	}
	return s, nil
}

func sqliteDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)",
		// Checkpoints run in the background (checkpointLoop), not inside
		// whichever commit crosses the WAL threshold.
		"wal_autocheckpoint(0)",
		// Once the WAL restarts, trim a file that grew past 128 MiB (above
		// walRestartFrames plus what half a second adds: not trimmed and
		// grown again on every cycle).
		"journal_size_limit(134217728)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Close closes the database.
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
		s.stopCheckpoints = nil
	}
	s.stopAudiences()
	s.stopWriter()
	s.closeStmts()
	return s.DB.Close()
}

// SingleWriter reports whether this process is the only one writing the
// database, so what it read stays true until it writes itself: a SQLite file
// belongs to the process holding the data dir's lock, while PostgreSQL may be
// shared by replicas. Packages that keep data in memory between
// transactions (the webhooks package's enabled webhooks) ask it.
func (s *Store) SingleWriter() bool { return s.Dialect == SQLite }

// Ping checks the database answers, for readiness.
func (s *Store) Ping(ctx context.Context) error { return s.DB.PingContext(ctx) }

// migrate applies the embedded migrations not yet recorded, each in its own
// transaction, in file-name order. It runs under [Store.Exclusive].
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.DB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS statusflow_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		var n int
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM statusflow_migrations WHERE name = $1`, base).Scan(&n); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range splitStatements(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %s: %w\n%s", base, err, stmt)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO statusflow_migrations (name, applied_at) VALUES ($1, $2)`, base, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// splitStatements splits a migration on semicolons at line ends, dropping
// comment-only lines. Migrations keep to that shape.
func splitStatements(sqlText string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sqlText, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// isUniqueViolation reports whether err is a unique-key violation on either
// database, by the driver's error code: SQLite's extended codes for a UNIQUE
// or PRIMARY KEY constraint, PostgreSQL's SQLSTATE 23505 (unique_violation).
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgerrUniqueViolation
}

// pgerrUniqueViolation is PostgreSQL's SQLSTATE for a unique-key violation.
const pgerrUniqueViolation = "23505"

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// checkpointInterval is how often the WAL is copied back into the database
// file. Between checkpoints the WAL grows by what was written meanwhile.
const checkpointInterval = 500 * time.Millisecond

// walRestartFrames is the WAL length (frames of one page) past which the
// writer catches the checkpoint up itself (catchUpCheckpoint): 16384 frames
// of 4 KiB pages, 64 MiB. Each catch-up holds the writer for ~10–15 ms (its
// two fsyncs, mostly), so the limit is large enough that under the heaviest
// load it comes about once a second, not twice.
const walRestartFrames = 16384

// startCheckpoints runs SQLite's WAL checkpoints on a background goroutine.
// PASSIVE checkpoints never wait for (or block) the writer, so the commit
// path only appends to the WAL. SQLite restarts the WAL from its start when
// a write begins after a checkpoint has copied everything, which under
// steady writes never happens: commits land while each checkpoint runs, and
// the WAL would grow without end. So when the WAL is past walRestartFrames, the checkpointer
// asks the writer to run one checkpoint between two batches, when nothing
// can append; it copies only what the background one has not, and the next
// batch starts the WAL again from its beginning (journal_size_limit trims
// the file back).
func (s *Store) startCheckpoints() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// A last full copy, so a clean shutdown leaves a short WAL.
				s.DB.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
				return
			case <-t.C:
				var busy, logFrames, copied int
				if err := s.DB.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err == nil && int64(logFrames) >= s.walLimit.Load() {
					s.walLong.Store(true)
				}
			}
		}
	}()
	s.stopCheckpoints = func() { cancel(); <-done }
}
