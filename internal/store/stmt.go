package store

import (
	"context"
	"database/sql"
)

// Prepared statements for hot write paths. A statement is prepared once per
// connection and reused by every transaction on it (database/sql keeps the
// per-connection copies); preparing each INSERT anew cost a fifth of the
// publishing path's CPU on SQLite. Only SQLite uses the cache: there every
// caller is the single group-commit writer, while on PostgreSQL each writer
// holds its own connection, so preparing on another could exhaust the pool,
// and pgx already caches statements per connection.

func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// txStmt is the prepared statement for q bound to tx. In a group-commit
// batch the binding is made once per query and reused by every write of the
// batch (database/sql would otherwise build a new bound statement for each
// call); only the leader runs a batch, so batchStmts needs no lock.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	l := s.laneOf(tx)
	if l != nil {
		if st, ok := l.batchStmts[q]; ok {
			return st, nil
		}
	}
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	bound := tx.StmtContext(ctx, st)
	if l != nil {
		l.batchStmts[q] = bound
	}
	return bound, nil
}

// TxExec runs q inside tx with a cached prepared statement.
//
// In a pipelined write on PostgreSQL (see [Store.WritePipelined]) q may be
// queued instead: its error then fails the whole batch, which is replayed
// one write at a time, and the result is not available.
func (s *Store) TxExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if s.Dialect != SQLite {
		if s.queue(tx, q, args) {
			return deferredResult{}, nil
		}
		if err := s.flush(ctx, tx); err != nil {
			return nil, err
		}
		return tx.ExecContext(ctx, q, args...)
	}
	st, err := s.txStmt(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// TxQuery runs q inside tx with a cached prepared statement.
func (s *Store) TxQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if s.Dialect != SQLite {
		if err := s.flush(ctx, tx); err != nil {
			return nil, err
		}
		return tx.QueryContext(ctx, q, args...)
	}
	st, err := s.txStmt(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// TxQueryRow runs q inside tx with a cached prepared statement.
func (s *Store) TxQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if s.Dialect != SQLite {
		// A failed flush aborted the transaction: the query reports it.
		s.flush(ctx, tx)
		return tx.QueryRowContext(ctx, q, args...)
	}
	st, err := s.txStmt(ctx, tx, q)
	if err != nil {
		return tx.QueryRowContext(ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Store) closeStmts() {
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
}
