package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
)

// TestBus_AppWiring starts the whole app (embedded NATS, default config) and
// checks what app.go wires: Prefer: respond-async goes through the trigger
// stream and answers 202 with the messageId that is then published, and
// /readyz includes the nats check.
func TestBus_AppWiring(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("sales", "sandbox")

	r := a.Do("POST", "/api/message/status/sales", tok, map[string]any{"type": "text", "message": "async", "source": "crm"}, "Prefer", "respond-async")
	if r.Code != 202 {
		t.Fatalf("POST with Prefer: respond-async = %d %s", r.Code, r.Raw)
	}
	id, _ := r.Data()["messageId"].(string)
	if id == "" {
		t.Fatalf("no messageId in %s", r.Raw)
	}
	eventually(t, 10*time.Second, "the async status published", func() bool {
		list, err := a.Store.SandboxStatusList(context.Background(), "sales", 10)
		return err == nil && len(list) == 1 && list[0].MessageID == id
	})

	ready := a.Do("GET", "/readyz", "", nil)
	if ready.Code != 200 || !strings.Contains(string(ready.Raw), "nats") {
		t.Errorf("/readyz = %d %s", ready.Code, ready.Raw)
	}
	if err := a.Bus.Ready(context.Background()); err != nil {
		t.Errorf("Bus.Ready = %v", err)
	}
}
