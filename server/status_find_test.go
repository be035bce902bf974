package server_test

import (
	"testing"

	"github.com/statusflow/statusflow/internal/apptest"
)

// TestStatusFind reads one published status back by its message id: type,
// source, trace and origin as recorded, revoked after a delete; 404 for an
// unknown id, another instance's token refused.
func TestStatusFind(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")
	other := a.CreateInstance("support", "sandbox")

	r := a.Do("POST", "/api/nodes/status.publish/execute", tok, map[string]any{"instance": "sales",
		"input":  map[string]any{"type": "text", "message": "find me", "source": "crm"},
		"origin": map[string]any{"platform": "zapier", "workflowId": "987"}})
	if r.Code != 200 {
		t.Fatalf("publish: %d %s", r.Code, r.Raw)
	}
	out := r.Body["output"].(map[string]any)
	id := out["messageId"].(string)

	f := a.Do("GET", "/api/status/find/sales?messageId="+id, tok, nil)
	d := f.Data()
	origin, _ := d["origin"].(map[string]any)
	if f.Code != 200 || d["messageId"] != id || d["messageType"] != "text" || d["source"] != "crm" || d["traceId"] != out["traceId"] ||
		origin["platform"] != "zapier" || origin["workflowId"] != "987" || d["revoked"] != false || d["createdAt"] == nil {
		t.Fatalf("find: %d %s", f.Code, f.Raw)
	}

	if r := a.Do("DELETE", "/api/chat/delete/sales", tok, map[string]any{"messageId": id, "deleteForEveryone": true}); r.Code != 200 {
		t.Fatalf("delete: %d %s", r.Code, r.Raw)
	}
	if f := a.Do("GET", "/api/status/find/sales?messageId="+id, tok, nil); f.Code != 200 || f.Data()["revoked"] != true || f.Data()["revokedAt"] == nil {
		t.Fatalf("after revoke: %d %s", f.Code, f.Raw)
	}
	if f := a.Do("GET", "/api/status/find/sales?messageId=3EB0NOPE", tok, nil); f.Code != 404 || f.ErrorMessage() != "message not found" {
		t.Fatalf("unknown id: %d %s", f.Code, f.Raw)
	}
	if f := a.Do("GET", "/api/status/find/sales", tok, nil); f.Code != 400 {
		t.Fatalf("no id: %d %s", f.Code, f.Raw)
	}
	if f := a.Do("GET", "/api/status/find/sales?messageId="+id, other, nil); f.Code != 401 && f.Code != 403 {
		t.Fatalf("another instance's token: %d %s", f.Code, f.Raw)
	}
}
