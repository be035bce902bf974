package bus_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	"github.com/statusflow/statusflow/internal/bus"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

const faultTriggers = 1000

// publishFaultStream publishes faultTriggers text triggers "fault-<i>", each
// with Nats-Msg-Id "fault-<i>", plus a duplicate of an earlier one every
// 10th. A publish that fails (server down) is retried with the same id until
// it is stored. midway runs once, after half of them, in its own goroutine
// while publishing goes on.
func publishFaultStream(t *testing.T, js jetstream.JetStream, subject, token string, midway func()) {
	t.Helper()
	var midwayDone atomic.Bool
	done := make(chan struct{})
	send := func(i int) {
		m := trigger(subject, token, fmt.Sprintf("fault-%d", i), map[string]any{"input": map[string]any{"type": "text", "message": fmt.Sprintf("fault-%d", i)}})
		deadline := time.Now().Add(40 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := js.PublishMsg(ctx, m)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("trigger %d never stored: %v", i, err)
				return
			}
			time.Sleep(50 * time.Millisecond) // the server is down: retry the same Nats-Msg-Id
		}
	}
	for i := range faultTriggers {
		send(i)
		if i%10 == 9 {
			send(i - 5) // a duplicate Nats-Msg-Id
		}
		if i == faultTriggers/2 && midway != nil && !midwayDone.Swap(true) {
			go func() { defer close(done); midway() }()
		}
	}
	if midway != nil {
		<-done
	}
}

// tally counts the fault-<i> triggers missing from texts and the extra copies.
func tally(texts []string) (lost, twice int) {
	seen := map[string]int{}
	for _, s := range texts {
		seen[s]++
	}
	for i := range faultTriggers {
		switch n := seen[fmt.Sprintf("fault-%d", i)]; {
		case n == 0:
			lost++
		case n > 1:
			twice += n - 1
		}
	}
	return lost, twice
}

// checkExactlyOnce asserts every fault-<i> text appears exactly once.
func checkExactlyOnce(t *testing.T, texts []string) {
	t.Helper()
	lost, twice := tally(texts)
	t.Logf("%d statuses for %d unique triggers: %d lost, %d published twice", len(texts), faultTriggers, lost, twice)
	if lost != 0 || twice != 0 || len(texts) != faultTriggers {
		t.Errorf("want every unique trigger published exactly once")
	}
}

// TestBus_FaultNATSRestart publishes 1,000 triggers (with duplicate
// Nats-Msg-Ids) while the NATS server is stopped and started again on the
// same port and store mid-stream.
func TestBus_FaultNATSRestart(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := newCore(t)
	prefix := uniquePrefix()
	newBus(t, c, srv.URL(), prefix, func(cfg *bus.Config) { cfg.MaxDeliver = 50; cfg.AckWait = 2 * time.Second })
	_, js := connect(t, srv.URL())
	subject := bus.Subjects{Prefix: prefix}.Trigger("status.publish", "sales")

	start := time.Now()
	publishFaultStream(t, js, subject, instanceToken, func() {
		srv.stop()
		time.Sleep(time.Second) // the server stays down for a while
		srv.start()
	})
	// About 3 s normally; -race slows the pure-Go SQLite about tenfold.
	eventually(t, 150*time.Second, "all triggers consumed", func() bool {
		return sandboxCount(t, c.Store, "sales") >= faultTriggers && triggersDrained(t, js, prefix)
	})
	t.Logf("1,000 triggers through a NATS restart in %s", time.Since(start).Round(time.Millisecond))
	checkExactlyOnce(t, textsOf(t, c.Store, "sales"))
}

// statusflowProcess is the real binary run against the test's NATS.
type statusflowProcess struct {
	t    *testing.T
	bin  string
	env  []string
	addr string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func (p *statusflowProcess) start() {
	p.t.Helper()
	p.logs = &bytes.Buffer{}
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	eventually(p.t, 30*time.Second, "statusflow /readyz", func() bool {
		r, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
}

func (p *statusflowProcess) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill() // SIGKILL: no shutdown at all
		p.cmd.Wait()
		p.cmd = nil
	}
}

// buildStatusflow builds the repository's main package into dir.
func buildStatusflow(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "statusflow")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBus_FaultProcessKill publishes 1,000 triggers (with duplicate
// Nats-Msg-Ids) while the statusflow process is killed with SIGKILL and
// started again mid-stream; the count comes from its SQLite file.
func TestBus_FaultProcessKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the statusflow binary")
	}
	t.Parallel()
	tmp := t.TempDir()
	bin := buildStatusflow(t, tmp)
	srv := startServer(t)
	prefix := uniquePrefix()
	dataDir := filepath.Join(tmp, "data")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &statusflowProcess{t: t, bin: bin, addr: addr, env: append(os.Environ(),
		"STATUSFLOW_ADDR="+addr,
		"STATUSFLOW_DATA_DIR="+dataDir,
		"STATUSFLOW_DATABASE_URL=",
		"STATUSFLOW_NATS_URL="+srv.URL(),
		"STATUSFLOW_NATS_PREFIX="+prefix,
		"STATUSFLOW_ACCOUNT_TOKEN="+accountToken,
		"STATUSFLOW_LOG_FORMAT=json",
	)}
	// Registered before the first start: a start that fails (readiness never
	// came) must not leave the process running after the test.
	t.Cleanup(func() {
		p.kill()
		if t.Failed() && p.logs != nil {
			t.Logf("statusflow logs (last run):\n%s", tail(p.logs.String(), 4000))
		}
	})
	p.start()

	body, _ := json.Marshal(map[string]any{"name": "sales", "engine": "sandbox", "token": instanceToken})
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/instance/new", bytes.NewReader(body))
	req.Header.Set("token", accountToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create instance: HTTP %d", resp.StatusCode)
	}

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "statusflow.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func() int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM sandbox_statuses WHERE instance = 'sales'`).Scan(&n); err != nil {
			return -1
		}
		return n
	}

	_, js := connect(t, srv.URL())
	subject := bus.Subjects{Prefix: prefix}.Trigger("status.publish", "sales")
	start := time.Now()
	var killedAt int
	var restarted time.Time
	publishFaultStream(t, js, subject, instanceToken, func() {
		// Kill while triggers are being executed, then start again.
		eventually(t, 30*time.Second, "some triggers executed", func() bool { return count() >= 200 })
		p.kill()
		killedAt = count()
		p.start()
		restarted = time.Now()
	})
	// Triggers the killed process had received but not acked come back
	// after AckWait (30 s). Those whose idempotency claim it had taken but not
	// completed wait for the claim's lease (10 min) before they may run again.
	// Wait until everything ran, or until the redeliveries are over
	// (AckWait after the restart) and the count stopped moving.
	deadline := time.Now().Add(50 * time.Second)
	settled := restarted.Add(bus.AckWaitDefault + 5*time.Second)
	last, lastChange := -1, time.Now()
	for time.Now().Before(deadline) && !(count() >= faultTriggers && triggersDrained(t, js, prefix)) {
		if n := count(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Now().After(settled) && time.Since(lastChange) > 3*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	held := pendingTriggers(t, js, prefix)
	t.Logf("1,000 triggers through a kill -9 (at %d published) in %s; %d still held in the stream", killedAt, time.Since(start).Round(time.Millisecond), held)

	rows, err := db.Query(`SELECT message, message_proto FROM sandbox_statuses WHERE instance = 'sales'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var texts []string
	for rows.Next() {
		var rec store.SandboxStatus
		var b64 string
		if err := rows.Scan(&rec.Message, &b64); err != nil {
			t.Fatal(err)
		}
		rec.Proto, _ = base64.StdEncoding.DecodeString(b64)
		m, err := whatsapp.RecordedMessage(&rec)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, m.GetExtendedTextMessage().GetText())
	}
	lost, twice := tally(texts)
	t.Logf("%d statuses for %d unique triggers: %d missing, %d published twice", len(texts), faultTriggers, lost, twice)
	if twice != 0 {
		t.Errorf("%d triggers published twice", twice)
	}
	// A missing one must still be in the triggers stream (delayed behind an
	// idempotency claim of the killed process), never dropped.
	if lost > held {
		t.Errorf("%d triggers missing but only %d still in the stream: lost", lost, held)
	}
}

// pendingTriggers counts the triggers still in the stream.
func pendingTriggers(t *testing.T, js jetstream.JetStream, prefix string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.Subjects{Prefix: prefix}.TriggersStream())
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return int(si.State.Msgs)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := strings.IndexByte(s[len(s)-n:], '\n')
	return s[len(s)-n+i+1:]
}
