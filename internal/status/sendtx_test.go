package status_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// On the sandbox, the send, the status row and status.published commit in
// one transaction (queued behind status.accepted): all three or none.
func TestService_SandboxSendsInTheStatusTransaction(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			st := storetest.New(t, d)
			sess, err := whatsapp.NewSandbox(st).Open(ctx, whatsapp.OpenParams{Instance: "sales"})
			if err != nil {
				t.Fatal(err)
			}
			rec := events.NewRecorder(st, log)
			// A write in the status's transaction that fails (as a full
			// disk would fail it), once broken is set.
			var broken atomic.Bool
			rec.AddTxHook(func(ctx context.Context, tx *sql.Tx, ev *events.CloudEvent, body []byte) (bool, error) {
				if broken.Load() && ev.Type == status.EventStatusPublished {
					return false, errors.New("disk on fire")
				}
				return false, nil
			})
			svc := status.NewService(sessionsFunc(func(context.Context, string) (whatsapp.Session, error) { return sess, nil }),
				st, nil, rec, nil, log)
			types := func() []string {
				evs, err := st.EventList(ctx, &store.EventListParams{Instance: "sales", Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, e := range evs {
					out = append(out, e.Type)
				}
				return out
			}

			res, err := svc.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "one commit"}})
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := st.SandboxStatusCount(ctx, "sales"); n != 1 {
				t.Fatalf("%d sandbox records, want 1", n)
			}
			if row, err := st.StatusGet(ctx, "sales", res.MessageID); err != nil || !row.CreatedAt.Equal(res.Timestamp.Truncate(time.Millisecond)) {
				t.Fatalf("status row %+v (%v), want created at %s", row, err, res.Timestamp)
			}
			if got, want := types(), []string{status.EventStatusAccepted, status.EventStatusPublished}; !slices.Equal(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}

			// The same message id again (a redelivered trigger): the same
			// message, recorded once.
			if _, err := svc.Execute(ctx, status.Command{Instance: "sales", MessageID: res.MessageID, Args: status.PublishArgs{Type: "text", Message: "one commit"}}); err != nil {
				t.Fatal(err)
			}
			if n, _ := st.SandboxStatusCount(ctx, "sales"); n != 1 {
				t.Fatalf("after a repeated id: %d sandbox records, want 1", n)
			}

			// A transaction that fails leaves neither a record nor a status
			// row: the send did not happen.
			broken.Store(true)
			res, err = svc.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "never"}})
			if e := errcode.AsError(err); e.Code != errcode.CodeSendFailed || e.Message != "Failed to send status: record event: disk on fire" {
				t.Fatalf("got %v, want send_failed with the cause", err)
			}
			if res != nil {
				t.Fatalf("result %+v for a failed send", res)
			}
			if n, _ := st.SandboxStatusCount(ctx, "sales"); n != 1 {
				t.Fatalf("after a failed send: %d sandbox records, want 1", n)
			}
			got := types()
			if want := []string{status.EventStatusAccepted, status.EventStatusFailed}; !slices.Equal(got[len(got)-2:], want) {
				t.Fatalf("events %v, want … %v", got, want)
			}
		})
	}
}
