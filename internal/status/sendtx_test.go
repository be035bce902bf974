package status_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// brokenTxSession is a sandbox session whose in-transaction send fails, the
// way a database error would fail it.
type brokenTxSession struct{ whatsapp.Session }

func (brokenTxSession) SendStatusTx(context.Context, *sql.Tx, string, *waE2E.Message, time.Time) error {
	return errors.New("disk on fire")
}

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
			var current whatsapp.Session = sess
			svc := status.NewService(sessionsFunc(func(context.Context, string) (whatsapp.Session, error) { return current, nil }),
				st, nil, events.NewRecorder(st, log), nil, log)
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

			// A send that fails leaves neither a record nor a status row.
			current = brokenTxSession{sess}
			_, err = svc.Execute(ctx, status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "never"}})
			if e := status.AsError(err); e.Code != status.CodeSendFailed || e.Message != "Failed to send status: disk on fire" {
				t.Fatalf("got %v, want send_failed with the cause", err)
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
