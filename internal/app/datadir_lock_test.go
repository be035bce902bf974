package app

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/statusflow/statusflow/internal/config"
)

func TestLockDataDir_SecondHolderRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file, so a second open in this process is
	// refused like another process would be.
	_, err = lockDataDir(dir)
	if !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second lock: %v, want ErrDataDirLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, "STATUSFLOW_DATABASE_URL") {
		t.Fatalf("message %q names neither the holder nor the way out", msg)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	release, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release()
}

func TestUsesDataDirExclusively(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		db, nats string
		want     bool
	}{
		{"", "", true},
		{"/tmp/x.db", "nats://127.0.0.1:4222", true},
		{"postgres://h/db", "", true},
		{"postgres://h/db", "nats://127.0.0.1:4222", false},
	} {
		if got := usesDataDirExclusively(&config.Config{DatabaseURL: c.db, NATSURL: c.nats}); got != c.want {
			t.Errorf("db %q nats %q: %v, want %v", c.db, c.nats, got, c.want)
		}
	}
}
