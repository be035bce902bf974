package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// modernc sqlite and pgx keep no goroutines after Close; fasthttp's
		// shared date-header updater and Fiber's test listener do.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
		// The contract test sends media URLs that name hosts this machine
		// cannot resolve; Go's resolver lets a DNS query outlive the
		// cancelled lookup until the query's own timeout.
		goleak.IgnoreAnyFunction("net.(*Resolver).lookupIPAddr.func2"),
		goleak.IgnoreAnyFunction("net.(*Resolver).goLookupIPCNAMEOrder.func3.1"),
		goleak.IgnoreAnyFunction("net.(*Resolver).goLookupIPCNAMEOrder"),
	)
}
