package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
)

// TestHealthcheck runs the built binary the way the Dockerfile's
// HEALTHCHECK does (`statusflow healthcheck`, address from STATUSFLOW_ADDR)
// and checks its exit code is the container's health verdict: 0 against a
// ready statusflow, non-zero with a reason on stderr when nothing listens or
// /readyz answers 503.
func TestHealthcheck(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "statusflow")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// run executes `statusflow healthcheck` against addr with no other
	// STATUSFLOW_ setting inherited, so only the test's address counts.
	run := func(t *testing.T, addr string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "healthcheck")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "STATUSFLOW_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "STATUSFLOW_ADDR="+addr)
		cmd.WaitDelay = 2 * time.Second
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		t.Cleanup(func() { // Run waits, so this only matters if the test dies mid-run
			if cmd.Process != nil && cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
			}
		})
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, stderr.String()
		case errors.As(err, &exit) && ctx.Err() == nil:
			return exit.ExitCode(), stderr.String()
		default:
			t.Fatalf("healthcheck did not run to an exit: %v (stderr %q)", err, stderr.String())
			return -1, ""
		}
	}

	t.Run("ready server", func(t *testing.T) {
		a := apptest.New(t, apptest.Options{})
		if r := a.Do("GET", "/readyz", "", nil); r.Code != http.StatusOK {
			t.Fatalf("precondition: /readyz answered %d: %s", r.Code, r.Raw)
		}
		if code, stderr := run(t, a.Addr()); code != 0 {
			t.Fatalf("healthcheck against ready %s exited %d, stderr %q", a.Addr(), code, stderr)
		}
	})

	t.Run("nothing listens", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // the port was free a moment ago and is now closed: connection refused
		code, stderr := run(t, addr)
		if code == 0 {
			t.Fatalf("healthcheck against closed %s exited 0", addr)
		}
		if !strings.Contains(stderr, "statusflow healthcheck:") {
			t.Fatalf("exit %d without a reason on stderr: %q", code, stderr)
		}
	})

	t.Run("not ready", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		code, stderr := run(t, strings.TrimPrefix(srv.URL, "http://"))
		if code == 0 {
			t.Fatalf("healthcheck against a 503 /readyz exited 0")
		}
		if !strings.Contains(stderr, "/readyz answered 503") {
			t.Fatalf("exit %d, stderr does not say /readyz answered 503: %q", code, stderr)
		}
	})
}
