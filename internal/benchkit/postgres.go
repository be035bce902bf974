package benchkit

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

var (
	createdMu sync.Mutex
	created   [][2]string // admin URL, database name
)

// CreateDB creates a fresh database (sf_bench_<random>) on the server of
// admin, a URL of an existing database, and returns its name. [DropCreated]
// drops every database made this way.
func CreateDB(admin string) (string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "sf_bench_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		return "", err
	}
	createdMu.Lock()
	created = append(created, [2]string{admin, name})
	createdMu.Unlock()
	return name, nil
}

// DropDB drops the database name (its connections are closed by force).
func DropDB(admin, name string) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return
	}
	defer db.Close()
	db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
}

// DropCreated drops every database [CreateDB] made (a run that exits early
// skips its deferred drops: call this on the way out).
func DropCreated() {
	createdMu.Lock()
	defer createdMu.Unlock()
	for _, c := range created {
		DropDB(c[0], c[1])
	}
	created = nil
}

// DBURL is admin with its database replaced by name.
func DBURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
