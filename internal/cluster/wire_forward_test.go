package cluster

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/natstest"
	"github.com/statusflow/statusflow/internal/status"
)

// echoExecutor answers each command with a result naming its instance and
// message id, or with err.
type echoExecutor struct {
	mu   sync.Mutex
	got  []status.Command
	err  error
	when time.Time
}

func (e *echoExecutor) ExecuteLocal(_ context.Context, cmd status.Command) (*status.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, cmd)
	if e.err != nil {
		return nil, e.err
	}
	return &status.Result{MessageID: cmd.MessageID, TraceID: cmd.Instance, Timestamp: e.when, Replayed: true}, nil
}

// A forwarded command over real NATS between replicas of this build and of
// the JSON-only builds before it, as in a rolling upgrade:
//   - new to new: binary both ways, through serve and its worker pool;
//   - old to new: the new owner reads the JSON command and answers JSON;
//   - new to old: the old owner refuses the binary command without running
//     it; the forwarder sends it again in JSON and gets the result.
func TestForward_MixedVersions(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(natstest.Start(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	exec := &echoExecutor{when: time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)}
	f := NewForwarder(nc, nil, exec, ForwardConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sub, err := nc.Subscribe(f.Subject("new"), f.serve)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe(); f.pool.close(); f.inflight.Wait() })

	// An owner of an older build: encoding/json both ways, as it was.
	var oldSeen []bool // whether each command it got was JSON
	var oldMu sync.Mutex
	oldSub, err := nc.Subscribe(f.Subject("old"), func(m *nats.Msg) {
		oldMu.Lock()
		oldSeen = append(oldSeen, isJSON(m.Data))
		oldMu.Unlock()
		var rep wireReply
		if cmd, err := decodeCommandJSON(m.Data); err != nil {
			rep.Error = &wireError{Code: errcode.CodeInvalid, Message: "Invalid forwarded command: " + err.Error()}
		} else {
			rep.Result = &status.Result{MessageID: cmd.MessageID, TraceID: "old"}
		}
		b, _ := json.Marshal(rep)
		m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oldSub.Unsubscribe() })

	ctx := context.Background()
	cmd := status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "hi"}, MessageID: "3EB0AA",
		Origin: status.Origin{Platform: "n8n"}, TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}

	// New to new, several times (the pool's workers are reused).
	for range 3 {
		res, err := f.forward(ctx, "new", cmd)
		if err != nil {
			t.Fatal(err)
		}
		want := &status.Result{MessageID: "3EB0AA", TraceID: "sales", Timestamp: exec.when, Replayed: true}
		if !reflect.DeepEqual(res, want) {
			t.Fatalf("result %+v, want %+v", res, want)
		}
	}
	exec.mu.Lock()
	if len(exec.got) != 3 || !reflect.DeepEqual(exec.got[0], cmd) {
		t.Fatalf("the owner ran %+v, want the command 3 times", exec.got)
	}
	exec.mu.Unlock()

	// Old to new: a JSON command gets a JSON answer.
	j, _ := encodeCommandJSON(cmd)
	m, err := nc.Request(f.Subject("new"), j, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep wireReply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Result == nil || rep.Result.MessageID != "3EB0AA" || !rep.Replayed {
		t.Fatalf("answer to an older build: %s (%v)", m.Data, err)
	}

	// New to old: refused binary, then JSON.
	res, err := f.forward(ctx, "old", cmd)
	if err != nil || res.TraceID != "old" || res.MessageID != "3EB0AA" {
		t.Fatalf("via an older owner: %+v, %v", res, err)
	}
	oldMu.Lock()
	if !reflect.DeepEqual(oldSeen, []bool{false, true}) {
		t.Fatalf("the older owner got JSON %v, want binary then JSON", oldSeen)
	}
	oldMu.Unlock()

	// The owner's errors and their backoff come back as they were.
	exec.mu.Lock()
	exec.err = errcode.RetryAfter(errcode.New(errcode.CodeDisconnected, "not connected"), 1500*time.Millisecond)
	exec.mu.Unlock()
	_, err = f.forward(ctx, "new", cmd)
	if wait, ok := errcode.RetryAfterOf(err); !ok || wait != 1500*time.Millisecond || errcode.AsError(err).Code != errcode.CodeDisconnected {
		t.Fatalf("owner's error: %v", err)
	}
}
