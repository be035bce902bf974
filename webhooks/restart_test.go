package webhooks_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

const restartToken = "sfa_restart-test-account-token-0123456789"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// statusflowBinary builds the real server once per test run.
func statusflowBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "statusflow-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "statusflow")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// process is a statusflow child process.
type process struct {
	cmd  *exec.Cmd
	addr string
	log  string
}

func startProcess(t *testing.T, bin, dataDir, dbURL string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "statusflow.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"STATUSFLOW_ADDR=127.0.0.1:0", "STATUSFLOW_DATA_DIR="+dataDir, "STATUSFLOW_DATABASE_URL="+dbURL,
		"STATUSFLOW_ACCOUNT_TOKEN="+restartToken, "STATUSFLOW_WEBHOOK_ALLOW_PRIVATE=true", "STATUSFLOW_LOG_FORMAT=json",
		"STATUSFLOW_WEBHOOK_RETRY_BASE=20ms", "STATUSFLOW_WEBHOOK_RETRY_MAX=200ms", "STATUSFLOW_WEBHOOK_POLL_INTERVAL=20ms",
		"STATUSFLOW_WEBHOOK_TIMEOUT=1s", "STATUSFLOW_WEBHOOK_LEASE=2s", "STATUSFLOW_WEBHOOK_MAX_ATTEMPTS=1000")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	waitFor(t, 70*time.Second, "statusflow listening", func() bool {
		b, _ := os.ReadFile(logPath)
		if time.Now().After(deadline) {
			t.Fatalf("statusflow did not start listening in 60s:\n%s", b)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "statusflow listening" {
				p.addr = line.Addr
				return true
			}
		}
		if cmd.ProcessState != nil {
			t.Fatalf("statusflow exited:\n%s", b)
		}
		return false
	})
	return p
}

// kill sends SIGKILL: no shutdown code runs.
func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func (p *process) do(t *testing.T, method, path, tok string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("token", tok)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return out
}

// TestProcess_KilledMidRetry publishes statuses while the receiver fails,
// kills the server with SIGKILL while deliveries are being retried (some in
// flight), restarts it on the same database and checks that every event is
// delivered, each with one webhook-id.
func TestProcess_KilledMidRetry(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			bin := statusflowBinary(t)
			dataDir := t.TempDir()
			dbURL := ""
			if d == store.Postgres {
				dbURL = storetest.NewURL(t, d)
			}
			var failing atomic.Bool
			failing.Store(true)
			rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				if failing.Load() {
					time.Sleep(50 * time.Millisecond) // slow, so deliveries are in flight at the kill
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})

			p1 := startProcess(t, bin, dataDir, dbURL)
			created := p1.do(t, "POST", "/api/instance/new", restartToken, map[string]any{"name": "sales", "engine": "sandbox"})
			tok := m(created, "instance", "token").(string)
			wh := p1.do(t, "POST", "/api/events/webhook/sales", tok, map[string]any{"url": rc.URL(), "events": []string{"status.published"}})
			rc.setSecrets(m(wh, "webhook", "secret").(string))

			const n = 20
			msgIDs := map[string]bool{}
			for i := range n {
				r := p1.do(t, "POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "status " + string(rune('a'+i))})
				msgIDs[m(r, "data", "messageId").(string)] = true
			}
			waitFor(t, 60*time.Second, "retries under way", func() bool { return len(rc.requests()) >= 2*n })
			p1.kill()
			before := len(rc.requests())

			failing.Store(false)
			p2 := startProcess(t, bin, dataDir, dbURL)
			waitFor(t, 60*time.Second, "every event delivered", func() bool {
				got := map[string]bool{}
				for _, r := range rc.delivered() {
					var data map[string]any
					json.Unmarshal(r.Event.Data, &data)
					if id, _ := data["messageId"].(string); msgIDs[id] {
						got[id] = true
					}
				}
				return len(got) == n
			})
			idsByEvent := map[string]map[string]bool{}
			for _, r := range rc.requests() {
				if r.VerifyErr != nil {
					t.Fatalf("signature: %v", r.VerifyErr)
				}
				if idsByEvent[r.Event.ID] == nil {
					idsByEvent[r.Event.ID] = map[string]bool{}
				}
				idsByEvent[r.Event.ID][r.ID] = true
			}
			if len(idsByEvent) != n {
				t.Fatalf("%d events seen, want %d", len(idsByEvent), n)
			}
			for ev, ids := range idsByEvent {
				if len(ids) != 1 {
					t.Fatalf("event %s came with webhook-ids %v", ev, ids)
				}
			}
			waitFor(t, 30*time.Second, "deliveries recorded as delivered", func() bool {
				r := p2.do(t, "GET", "/api/events/deliveries/sales?state=delivered&limit=1000", tok, nil)
				ds, _ := r["deliveries"].([]any)
				return len(ds) == n
			})
			t.Logf("%d requests before the kill, %d in all, %d events delivered", before, len(rc.requests()), n)
			if !strings.Contains(rc.URL(), "127.0.0.1") {
				t.Fatal("receiver not on loopback")
			}
		})
	}
}
