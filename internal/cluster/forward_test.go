package cluster_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
	"github.com/statusflow/statusflow/internal/errcode"
)

// sandboxRecords counts what the sandbox engine recorded per message id
// (the shared database: whichever replica sent it).
func sandboxRecords(t *testing.T, r *apptest.Replica, instance string) map[string][]map[string]any {
	t.Helper()
	resp := r.Do("GET", "/api/sandbox/"+instance+"/statuses?limit=100", apptest.AccountToken, nil)
	if resp.Code != 200 {
		t.Fatalf("sandbox statuses: %d %s", resp.Code, resp.Raw)
	}
	out := map[string][]map[string]any{}
	list, _ := resp.Body["statuses"].([]any)
	if list == nil {
		list, _ = resp.Body["data"].([]any)
	}
	for _, it := range list {
		m := it.(map[string]any)
		id, _ := m["messageId"].(string)
		out[id] = append(out[id], m)
	}
	return out
}

func traceIDOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

// Three replicas on one PostgreSQL database and one NATS server. Requests
// for an instance reach replicas that do not own it and end at the owner
// exactly once, with the caller's trace id and the owner's answer (success
// and error alike). The owner is killed: in the gap, requests get 503 with
// Retry-After and nothing is sent; once another replica took the instance
// over, requests are served again, and an idempotent retry of a request the
// dead owner served returns its first message id without a second send.
func TestForward_AnyReplicaAnswers(t *testing.T) {
	t.Parallel()
	// A TTL long enough that the gap is still open right after the kill on
	// a loaded machine (the last renewal is at most TTL/3 old).
	const ttl = 6 * time.Second
	c := apptest.NewCluster(t, apptest.ClusterOptions{Replicas: 3, LeaseTTL: ttl})
	owner, b, d := c.Replicas[0], c.Replicas[1], c.Replicas[2]
	tok := owner.CreateInstance("fwd", "sandbox")
	if got := c.Owner("fwd"); got != owner.ID {
		t.Fatalf("owner of a new instance = %q, want the replica that created it (%s)", got, owner.ID)
	}

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	publish := func(via *apptest.Replica, text, key string) *apptest.Response {
		h := []string{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}
		if key != "" {
			h = append(h, "Idempotency-Key", key)
		}
		return via.Do("POST", "/api/message/status/fwd", tok, map[string]any{"type": "text", "message": text}, h...)
	}

	// HTTP publish through a non-owner, with an idempotency key.
	r := publish(b, "via b", "first")
	if r.Code != 200 {
		t.Fatalf("publish via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	first, _ := r.Data()["messageId"].(string)
	if got := r.Data()["traceId"]; got != trace {
		t.Fatalf("traceId = %v, want the caller's %s", got, trace)
	}
	if got := traceIDOf(r.Header.Get("traceparent")); got != trace {
		t.Fatalf("traceparent header trace id = %s, want %s", got, trace)
	}
	// Node execute through another non-owner.
	r = d.Do("POST", "/api/nodes/status.publish/execute", tok, map[string]any{"instance": "fwd",
		"input": map[string]any{"type": "text", "message": "via d's execute"}, "origin": map[string]any{"platform": "n8n", "workflowId": "wf1"}})
	if r.Code != 200 {
		t.Fatalf("execute via %s: %d %s", d.ID, r.Code, r.Raw)
	}
	out, _ := r.Body["output"].(map[string]any)
	viaExecute, _ := out["messageId"].(string)
	if o, _ := out["origin"].(map[string]any); o["workflowId"] != "wf1" {
		t.Fatalf("execute output origin = %v, want the caller's", out["origin"])
	}
	// The owner's errors come back as they are: 404 message not found.
	r = b.Do("DELETE", "/api/chat/delete/fwd", tok, map[string]any{"messageId": "3EB0NOSUCHMESSAGE"})
	if r.Code != 404 || r.ErrorMessage() != errcode.ErrMessageNotFound.Message {
		t.Fatalf("delete of an unknown id via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	recs := sandboxRecords(t, b, "fwd")
	for _, id := range []string{first, viaExecute} {
		if len(recs[id]) != 1 {
			t.Fatalf("message %s recorded %d times, want once", id, len(recs[id]))
		}
	}
	if got := recs[first][0]["traceId"]; got != trace {
		t.Fatalf("the owner recorded trace %v, want %s", got, trace)
	}
	if _, held := owner.Leases.Held("fwd"); !held {
		t.Fatal("the owner lost its lease")
	}

	// The owner dies (no renewal, no release, no answers).
	c.Kill(owner)
	r = publish(b, "in the gap", "gap")
	if r.Code != 503 || r.ErrorStatus() != "disconnected" {
		t.Fatalf("publish in the gap: %d %s", r.Code, r.Raw)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > int(ttl/time.Second)+1 {
		t.Fatalf("Retry-After in the gap = %q, want seconds ≤ the lease TTL", r.Header.Get("Retry-After"))
	}
	if traceIDOf(r.Header.Get("traceparent")) != trace || r.Body["traceId"] != trace {
		t.Fatalf("the gap's answer lost the trace: %s", r.Raw)
	}
	next := c.WaitOwner("fwd", owner.ID)
	var other *apptest.Replica
	for _, x := range c.Live() {
		if x != next {
			other = x
		}
	}
	// The idempotent retry through the replica that does not own it now:
	// the first result, nothing sent again.
	r = publish(other, "via b", "first")
	if r.Code != 200 || r.Data()["messageId"] != first {
		t.Fatalf("idempotent retry after failover: %d %s (first message id %s)", r.Code, r.Raw, first)
	}
	r = publish(other, "after failover", "")
	if r.Code != 200 {
		t.Fatalf("publish after failover via %s (owner %s): %d %s", other.ID, next.ID, r.Code, r.Raw)
	}
	after, _ := r.Data()["messageId"].(string)
	recs = sandboxRecords(t, next, "fwd")
	for id, want := range map[string]int{first: 1, viaExecute: 1, after: 1} {
		if len(recs[id]) != want {
			t.Fatalf("message %s recorded %d times, want %d", id, len(recs[id]), want)
		}
	}
	if len(recs) != 3 {
		t.Fatalf("%d statuses recorded, want the 3 answered with 200 (none from the gap)", len(recs))
	}

	// GET /api/cluster on any replica: the live replicas and the new owner.
	r = other.Do("GET", "/api/cluster", apptest.AccountToken, nil)
	if r.Code != 200 {
		t.Fatalf("GET /api/cluster: %d %s", r.Code, r.Raw)
	}
	view := r.Data()
	if view["enabled"] != true || view["replica"] != other.ID {
		t.Fatalf("cluster view: %s", r.Raw)
	}
	live := map[string]bool{}
	for _, x := range view["replicas"].([]any) {
		live[x.(map[string]any)["id"].(string)] = true
	}
	if !live[next.ID] || !live[other.ID] {
		t.Fatalf("replicas %v, want %s and %s", live, next.ID, other.ID)
	}
	insts := view["instances"].([]any)
	if len(insts) != 1 || insts[0].(map[string]any)["owner"] != next.ID {
		t.Fatalf("instances %v, want fwd owned by %s", insts, next.ID)
	}
	if r := other.Do("GET", "/api/cluster", tok, nil); r.Code != 401 {
		t.Fatalf("GET /api/cluster with an instance token: %d, want 401", r.Code)
	}
	// instance.owner events: the first owner took it, then the new owner.
	r = other.Do("GET", "/api/events/log/fwd?type=instance.owner&limit=100", apptest.AccountToken, nil)
	if r.Code != 200 {
		t.Fatalf("event log: %d %s", r.Code, r.Raw)
	}
	taken := map[string]bool{}
	for _, e := range r.Body["events"].([]any) {
		d := e.(map[string]any)["data"].(map[string]any)
		if d["change"] == "taken" {
			taken[d["owner"].(string)] = true
		}
	}
	if !taken[owner.ID] || !taken[next.ID] {
		t.Fatalf("instance.owner taken events by %v, want %s and %s", taken, owner.ID, next.ID)
	}
}

// A replica caches the owner it forwarded an instance's commands to. When
// the instance moves (placement hands it to another replica), the old owner
// answers the next forwarded command with the gap's disconnected (it never
// runs a command for an instance it does not hold): the forwarder drops
// the cached owner, locates the instance afresh and sends the command to
// the new owner, so the caller gets its 200, not a 503, and one record.
func TestForward_CachedOwnerMoved(t *testing.T) {
	t.Parallel()
	c := apptest.NewCluster(t, apptest.ClusterOptions{Replicas: 3, LeaseTTL: time.Minute})
	a, b, d := c.Replicas[0], c.Replicas[1], c.Replicas[2]
	tok := a.CreateInstance("mv", "sandbox")
	publish := func(via *apptest.Replica, text string) string {
		t.Helper()
		r := via.Do("POST", "/api/message/status/mv", tok, map[string]any{"type": "text", "message": text})
		if r.Code != 200 {
			t.Fatalf("publish %q via %s: %d %s", text, via.ID, r.Code, r.Raw)
		}
		id, _ := r.Data()["messageId"].(string)
		return id
	}
	publish(b, "b learns that a owns it")

	// The instance moves from a to d, as placement moves it.
	if !a.Manager.Handoff(context.Background(), "mv") {
		t.Fatal("a did not have the instance open")
	}
	publish(d, "d takes it")
	if got := c.Owner("mv"); got != d.ID {
		t.Fatalf("owner after the move = %q, want %s", got, d.ID)
	}

	id := publish(b, "b's cached owner is stale")
	if n := len(sandboxRecords(t, b, "mv")[id]); n != 1 {
		t.Fatalf("message %s recorded %d times, want once", id, n)
	}
}
