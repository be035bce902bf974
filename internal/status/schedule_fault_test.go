package status_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScheduler_KillNine runs the real binary, schedules 300 statuses due
// over the next seconds, kills it with SIGKILL while they fire, starts it
// again on the same data dir and checks that every one was published
// exactly once (the sandbox records each send under its message id).
func TestScheduler_KillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(dir, "statusflow")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	const account = "sfa_kill-nine-account-token-0123456789"
	env := append(os.Environ(), "STATUSFLOW_ADDR="+addr, "STATUSFLOW_DATA_DIR="+filepath.Join(dir, "data"), "STATUSFLOW_DATABASE_URL=",
		"STATUSFLOW_NATS_URL=", "STATUSFLOW_NATS_LISTEN=127.0.0.1:0", "STATUSFLOW_ACCOUNT_TOKEN="+account, "STATUSFLOW_LOG_FORMAT=json",
		"STATUSFLOW_RATE_LIMIT=100000", "STATUSFLOW_SCHEDULE_LEASE=2s")
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if r, err := http.Get("http://" + addr + "/readyz"); err == nil {
				r.Body.Close()
				if r.StatusCode == 200 {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("not ready:\n%s", tailOf(logs.String(), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	call := func(method, path, tok string, body any) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}

	cmd := start()
	tok := call("POST", "/api/instance/new", account, map[string]any{"name": "sales", "engine": "sandbox"})["instance"].(map[string]any)["token"].(string)
	const n = 300
	base := time.Now().Add(1500 * time.Millisecond)
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * 10 * time.Millisecond) // 3 s of schedules
		d := call("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": fmt.Sprint("s", i), "publishAt": at.UTC().Format(time.RFC3339Nano)})["data"].(map[string]any)
		want[d["messageId"].(string)] = true
	}
	time.Sleep(time.Until(base.Add(1500 * time.Millisecond))) // about half have fired
	before := len(call("GET", "/api/sandbox/sales/statuses?limit=1000", tok, nil)["statuses"].([]any))
	cmd.Process.Kill()
	cmd.Wait()
	cmd = start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		open := call("GET", "/api/schedule/sales?state=pending,running", tok, nil)["data"].(map[string]any)["schedules"].([]any)
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d schedules still open", len(open))
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, s := range call("GET", "/api/sandbox/sales/statuses?limit=1000", tok, nil)["statuses"].([]any) {
		seen[s.(map[string]any)["messageId"].(string)]++
	}
	var lost, twice int
	for id := range want {
		switch seen[id] {
		case 0:
			lost++
		case 1:
		default:
			twice++
		}
	}
	failed := call("GET", "/api/schedule/sales?state=failed&limit=1000", tok, nil)["data"].(map[string]any)["schedules"].([]any)
	t.Logf("%d schedules, killed with %d published: %d published once, %d lost, %d twice, %d failed", n, before, n-lost-twice, lost, twice, len(failed))
	if lost != 0 || twice != 0 || len(seen) != n || len(failed) != 0 {
		t.Fatalf("not exactly once: lost %d, twice %d, sandbox %d, failed %v\n%s", lost, twice, len(seen), failed, tailOf(logs.String(), 3000))
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
