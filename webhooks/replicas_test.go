package webhooks_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/webhooks"
)

// Three replicas (each its own store pool, group-commit writer, recorder
// and delivery worker) on one PostgreSQL database: events recorded through
// any of them are delivered exactly once, whichever worker claims them, and
// a webhook created on one replica takes the events recorded on the others.
func TestOutbox_SeveralReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewURL(t, store.Postgres)
	var mu sync.Mutex
	seen := map[string]int{}
	rc := newReceiver(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		mu.Lock()
		seen[r.Header.Get("webhook-id")]++
		mu.Unlock()
		return 200
	})
	var bundles []*testBundle
	for i := range 3 {
		st, err := store.Open(ctx, url, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if i == 0 {
			if err := st.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: uuid.NewString(), State: "connected", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		cfg := fastConfig()
		w, err := webhooks.NewWorker(st, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := webhooks.NewService(st, nil, w, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rec := events.NewRecorder(st, discardLog())
		rec.AddTxHook(svc.TxHook)
		rec.OnCommit(w.Wake)
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Stop(context.Background()) })
		bundles = append(bundles, &testBundle{store: st, rec: rec, svc: svc, worker: w, cfg: cfg})
	}
	hook := bundles[0].addWebhook(t, "default", rc.URL())
	rc.setSecrets(hook.Secret)
	const n = 60
	for i := range n {
		bundles[i%3].emit(t, status.EventStatusPublished)
	}
	waitFor(t, waitLong, "every delivery delivered", func() bool { return bundles[1].allIn(t, n, webhooks.StateDelivered) })
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Fatalf("%d distinct deliveries for %d events", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("delivery %s sent %d times", id, c)
		}
	}
}
