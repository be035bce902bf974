package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/statusflow/statusflow/internal/apptest"
)

// TestServer_DeleteInstanceForgetsWebhooks: a deleted instance's webhooks go
// with it, also from the webhooks package's memory of enabled webhooks (kept
// on SQLite between events): a new instance of the same name, which has no
// webhook, gets no delivery for its events.
func TestServer_DeleteInstanceForgetsWebhooks(t *testing.T) {
	t.Parallel()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)
	a := apptest.New(t, apptest.Options{})
	publish := func(tok string) {
		t.Helper()
		if r := a.Do("POST", "/api/message/status/shop", tok, map[string]any{"type": "text", "message": "hi"}); r.Code != 200 {
			t.Fatalf("publish: %d %s", r.Code, r.Raw)
		}
	}
	deliveries := func(tok string) int {
		t.Helper()
		r := a.Do("GET", "/api/events/deliveries/shop", tok, nil)
		ds, _ := r.Body["deliveries"].([]any)
		if r.Code != 200 {
			t.Fatalf("deliveries: %d %s", r.Code, r.Raw)
		}
		return len(ds)
	}

	tok := a.CreateInstance("shop", "sandbox")
	if r := a.Do("POST", "/api/events/webhook/shop", tok, map[string]any{"url": receiver.URL}); r.Code != 201 {
		t.Fatalf("webhook: %d %s", r.Code, r.Raw)
	}
	publish(tok) // the instance's enabled webhooks are now remembered
	if n := deliveries(tok); n == 0 {
		t.Fatal("no delivery before the delete")
	}
	if r := a.Do("DELETE", "/api/instance/delete/shop", apptest.AccountToken, nil); r.Code != 200 {
		t.Fatalf("delete: %d %s", r.Code, r.Raw)
	}
	tok = a.CreateInstance("shop", "sandbox")
	publish(tok)
	if n := deliveries(tok); n != 0 {
		t.Fatalf("the new instance got %d deliveries of the deleted one's webhook", n)
	}
}
