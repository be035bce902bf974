package bus_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until the pool is closed;
		// SQLite stores are closed in t.Cleanup, after which it exits.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}
