package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the lock a process holds on its data dir while it uses
// the embedded SQLite database or the embedded NATS server's JetStream
// files there: two processes on those files would corrupt them (SQLite's
// single-writer queue and the WAL checkpointer are per process, JetStream's
// file store assumes one server).
const lockFileName = "statusflow.lock"

// ErrDataDirLocked is returned by New when another process holds the data dir.
var ErrDataDirLocked = errors.New("data dir in use by another statusflow process")

// lockDataDir takes an exclusive flock on dir's lock file, without waiting.
// The kernel releases it when the process dies, even by kill -9, so a
// crashed process never leaves a stale lock behind. The file holds the
// holder's pid, for the error message.
func lockDataDir(dir string) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("STATUSFLOW_DATA_DIR %q: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("STATUSFLOW_DATA_DIR %q: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if _, perr := strconv.Atoi(holder); perr != nil || holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("%w: %s is locked (pid %s). The embedded defaults (SQLite file, embedded NATS) serve one process per data dir; "+
			"to run several replicas set STATUSFLOW_DATABASE_URL to PostgreSQL and STATUSFLOW_NATS_URL to a NATS cluster (README: Scaling out)",
			ErrDataDirLocked, path, holder)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() error {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return f.Close()
	}, nil
}
