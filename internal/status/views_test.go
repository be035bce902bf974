package status_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// TestService_RecordReceipt feeds receipts at the engine seam (a sandbox
// session's OnReceipt hook, the one whatsmeow's receipts take) and checks
// views are recorded once per viewer, also across a restart, and that
// receipts for unknown ids change nothing.
func TestService_RecordReceipt(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := storetest.NewURL(t, d)
			dir := t.TempDir()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			open := func() (*store.Store, *whatsapp.Manager, *status.Service) {
				st, err := store.Open(ctx, url, dir)
				if err != nil {
					t.Fatal(err)
				}
				mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
				svc := status.NewService(mgr, st, nil, events.NewRecorder(st, log), nil, log)
				mgr.OnReceipt = func(r whatsapp.Receipt) { svc.RecordReceipt(ctx, r) }
				if err := mgr.Start(ctx); err != nil {
					t.Fatal(err)
				}
				return st, mgr, svc
			}
			st, mgr, svc := open()
			if _, _, err := mgr.Create(ctx, "sales", "sandbox", "hash"); err != nil {
				t.Fatal(err)
			}
			res, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "look"}})
			if err != nil {
				t.Fatal(err)
			}
			alice, bob := "5511999990001@s.whatsapp.net", "5511999990002@s.whatsapp.net"
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(mgr.SimulateViews(ctx, "sales", res.MessageID, "read", []string{alice, bob}))
			must(mgr.SimulateViews(ctx, "sales", res.MessageID, "read", []string{alice})) // again: no new view
			must(mgr.SimulateViews(ctx, "sales", "3EB0UNKNOWN", "read", []string{alice})) // not ours
			viewed := func(st *store.Store) []status.ViewedData {
				list, err := st.EventList(ctx, &store.EventListParams{Instance: "sales", Type: status.EventStatusViewed, Limit: 100})
				must(err)
				var out []status.ViewedData
				for _, e := range list {
					if e.TraceID != res.TraceID {
						t.Fatalf("status.viewed on trace %s, the status is on %s", e.TraceID, res.TraceID)
					}
					var ce struct{ Data status.ViewedData }
					must(json.Unmarshal([]byte(e.Body), &ce))
					out = append(out, ce.Data)
				}
				return out
			}
			if v := viewed(st); len(v) != 2 || v[0].Viewer != alice || v[0].Views != 1 || v[1].Viewer != bob || v[1].Views != 2 {
				t.Fatalf("events %+v", v)
			}
			mgr.Stop(context.Background())
			st.Close()

			st, mgr, _ = open() // restart: the same receipt is still a repeat
			defer st.Close()
			defer mgr.Stop(context.Background())
			must(mgr.SimulateViews(ctx, "sales", res.MessageID, "played", []string{bob}))
			must(mgr.SimulateViews(ctx, "sales", res.MessageID, "read", []string{"5511999990003@s.whatsapp.net"}))
			if v := viewed(st); len(v) != 3 || v[2].Views != 3 {
				t.Fatalf("after restart %+v", v)
			}
			list, err := st.ViewList(ctx, &store.ViewListParams{Instance: "sales", MessageID: res.MessageID, Limit: 2})
			must(err)
			if len(list) != 2 || list[0].Viewer != alice || list[1].Kind != "read" {
				t.Fatalf("page 1 %+v", list)
			}
			rest, err := st.ViewList(ctx, &store.ViewListParams{Instance: "sales", MessageID: res.MessageID, Limit: 2, After: list[1]})
			must(err)
			if len(rest) != 1 || rest[0].Viewer != "5511999990003@s.whatsapp.net" || time.Since(rest[0].ViewedAt) > time.Minute {
				t.Fatalf("page 2 %+v", rest)
			}
		})
	}
}
