// Package storetest gives tests a fresh, real database: a SQLite file in a
// temporary folder, or a new PostgreSQL database on the machine's server
// (127.0.0.1:5432, trust auth) that is dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	"github.com/statusflow/statusflow/internal/store"
)

// PostgresAdminURL is where test databases are created. STATUSFLOW_TEST_POSTGRES overrides it.
func PostgresAdminURL() string {
	if u := os.Getenv("STATUSFLOW_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Dialects lists the databases every store test runs on.
func Dialects() []store.Dialect { return []store.Dialect{store.SQLite, store.Postgres} }

// New opens a fresh store of the given dialect, closed and removed at cleanup.
func New(t testing.TB, d store.Dialect) *store.Store {
	t.Helper()
	url := NewURL(t, d)
	s, err := store.Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatalf("open %s store: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewURL creates a fresh empty database and returns its STATUSFLOW_DATABASE_URL
// value ("" plus a data dir for SQLite callers means the default file; here it
// is an explicit file path). The database is dropped at cleanup.
func NewURL(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return t.TempDir() + "/statusflow.db"
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "sf_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", PostgresAdminURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("postgres: create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", PostgresAdminURL())
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
}
