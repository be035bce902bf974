package webhooks_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves goroutines behind: workers must
// stop their loops and deliveries, receivers and apps must be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's shared date-header updater and worker pool outlive Fiber apps.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
		goleak.Cleanup(func(code int) {
			if binPath != "" {
				os.RemoveAll(filepath.Dir(binPath))
			}
			os.Exit(code)
		}),
	)
}
