package media_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// fixtureDir holds the media generated once per test binary (see fixture).
var fixtureDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "statusflow-media-fixtures-")
	if err != nil {
		panic(err)
	}
	fixtureDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}
