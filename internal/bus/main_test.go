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
		// fasthttp (under Fiber, in TestBus_AppWiring) keeps these for the process.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}
