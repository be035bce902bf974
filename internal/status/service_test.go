package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// failingSession stands in for WhatsApp where it cannot be reached: it
// fails uploads or sends the way the network would.
type failingSession struct {
	whatsapp.Session
	uploadErr, sendErr error
}

func (f *failingSession) Upload(ctx context.Context, r io.ReadSeeker, size int64, kind whatsapp.MediaKind) (*whatsapp.Upload, error) {
	if f.uploadErr != nil {
		return nil, f.uploadErr
	}
	return f.Session.Upload(ctx, r, size, kind)
}

func (f *failingSession) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	if f.sendErr != nil {
		return time.Time{}, f.sendErr
	}
	return f.Session.SendStatus(ctx, id, msg)
}

type sessionsFunc func(ctx context.Context, name string) (whatsapp.Session, error)

func (f sessionsFunc) Session(ctx context.Context, name string) (whatsapp.Session, error) {
	return f(ctx, name)
}

// fileMedia prepares a fixed file, the way the media pipeline hands one over.
type fileMedia struct{ dir string }

func (m fileMedia) Prepare(ctx context.Context, req status.MediaRequest) (*status.PreparedMedia, error) {
	p := filepath.Join(m.dir, "prepared.jpg")
	if err := os.WriteFile(p, []byte("\xff\xd8\xff\xe0 not really a jpeg"), 0o600); err != nil {
		return nil, err
	}
	return &status.PreparedMedia{Type: req.Type, Mimetype: "image/jpeg", Path: p, Size: 22, Width: 10, Height: 10, Remove: func() { os.Remove(p) }}, nil
}

type testBundle struct {
	store  *store.Store
	rec    *events.Recorder
	events *eventLog
	sess   *failingSession
}

// eventLog collects the events the recorder committed, as NATS would get
// them, but status.accepted (these tests look at outcomes; status.accepted
// precedes each).
type eventLog struct {
	mu  sync.Mutex
	evs []*events.CloudEvent
}

func (l *eventLog) PublishEvent(ctx context.Context, ev *events.CloudEvent, body []byte) error {
	if ev.Type == status.EventStatusAccepted {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	return nil
}

func (l *eventLog) list() []*events.CloudEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*events.CloudEvent(nil), l.evs...)
}

// eventData decodes an event's data.
func eventData[T any](t *testing.T, ev *events.CloudEvent) T {
	t.Helper()
	var d T
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("%s data: %v", ev.Type, err)
	}
	return d
}

// setup is the core as the server wires it: the sandbox engine, the event
// log on a real database, over a session that can fail the way the network
// would.
func setup(t *testing.T) (*status.Service, *testBundle) {
	t.Helper()
	st := storetest.New(t, store.SQLite)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := whatsapp.NewManager(st, log, whatsapp.NewSandbox(st))
	if _, _, err := mgr.Create(context.Background(), "sales", "sandbox", "hash"); err != nil {
		t.Fatal(err)
	}
	real, _ := mgr.Session(context.Background(), "sales")
	b := &testBundle{store: st, rec: events.NewRecorder(st, log), events: &eventLog{}, sess: &failingSession{Session: real}}
	b.rec.AddPublisher(b.events)
	sessions := sessionsFunc(func(ctx context.Context, name string) (whatsapp.Session, error) {
		if name != "sales" {
			return nil, store.ErrNotFound
		}
		return b.sess, nil
	})
	return status.NewService(sessions, st, fileMedia{t.TempDir()}, b.rec, nil, log), b
}

func TestService_Publish(t *testing.T) {
	t.Parallel()
	origin := status.Origin{Platform: "n8n", WorkflowID: "wf1", ExecutionID: "42"}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	t.Run("TextPublishedWithOriginAndTrace", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		res, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Origin: origin, TraceParent: parent,
			Args: status.PublishArgs{Type: "text", Message: "hi", Source: "crm"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || res.Source != "crm" || res.Origin == nil || res.Origin.WorkflowID != "wf1" {
			t.Fatalf("result %+v", res)
		}
		st, err := b.store.StatusGet(context.Background(), "sales", res.MessageID)
		if err != nil || st.TraceID != res.TraceID || st.Source != "crm" || st.Origin != `{"platform":"n8n","workflowId":"wf1","executionId":"42"}` {
			t.Fatalf("stored %+v %v", st, err)
		}
		if evs := b.events.list(); len(evs) != 1 || evs[0].Type != status.EventStatusPublished || evs[0].TraceParent != parent || evs[0].Origin.ExecutionID != "42" {
			t.Fatalf("events %+v", evs)
		}
		if list, _ := b.store.SandboxStatusList(context.Background(), "sales", 10); len(list) != 1 || list[0].MessageID != res.MessageID {
			t.Fatalf("sandbox recorded %+v", list)
		}
	})
	t.Run("SendFailed", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		b.sess.sendErr = errors.New("server returned error 479")
		_, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Origin: origin, Args: status.PublishArgs{Type: "text", Message: "hi"}})
		var se *errcode.Error
		if !errors.As(err, &se) || se.Code != errcode.CodeSendFailed || se.Message != "Failed to send status: server returned error 479" {
			t.Fatalf("got %v", err)
		}
		if evs := b.events.list(); len(evs) != 1 || evs[0].Type != status.EventStatusFailed || eventData[status.FailedData](t, evs[0]).Status != "send_failed" {
			t.Fatalf("events %+v", evs)
		}
	})
	t.Run("SendWhileDisconnected", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		b.sess.sendErr = whatsapp.ErrNotConnected
		_, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: status.PublishArgs{Type: "text", Message: "hi"}})
		if !errors.Is(err, errcode.ErrDisconnected) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("MediaUploadFailed", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		b.sess.uploadErr = errors.New("upload: 503")
		_, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: status.PublishArgs{Type: "image", MediaURL: "http://x/a.jpg"}})
		var se *errcode.Error
		if !errors.As(err, &se) || se.Code != errcode.CodeMediaUploadFailed || se.Message != "Failed to upload media to WhatsApp" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ImageUploadedAndBuilt", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		res, err := svc.Execute(context.Background(), status.Command{Instance: "sales", Args: status.PublishArgs{Type: "image", MediaURL: "http://x/a.jpg", Message: "caption"}})
		if err != nil {
			t.Fatal(err)
		}
		list, _ := b.store.SandboxStatusList(context.Background(), "sales", 1)
		if len(list) != 1 || list[0].MessageID != res.MessageID || list[0].MediaMimetype != "image/jpeg" || list[0].MediaBytes != 22 {
			t.Fatalf("recorded %+v", list)
		}
	})
	t.Run("InstanceNotFoundEmitsNothing", func(t *testing.T) {
		t.Parallel()
		svc, b := setup(t)
		_, err := svc.Execute(context.Background(), status.Command{Instance: "ghost", Args: status.PublishArgs{Type: "text", Message: "hi"}})
		if evs, _ := b.store.EventList(context.Background(), &store.EventListParams{Instance: "ghost", Limit: 10}); !errors.Is(err, errcode.ErrInstanceNotFound) || len(b.events.list()) != 0 || len(evs) != 0 {
			t.Fatalf("got %v, events %d", err, len(b.events.list()))
		}
	})
}

func TestError_Is(t *testing.T) {
	t.Parallel()
	err := error(&errcode.Error{Code: errcode.CodeDisconnected, Message: "detail", Err: io.EOF})
	if !errors.Is(err, errcode.ErrDisconnected) || errors.Is(err, errcode.ErrInstanceNotFound) || !errors.Is(err, io.EOF) {
		t.Fatal("Is/Unwrap mismatch")
	}
	if errcode.CodeInvalid.Public() || !errcode.CodeSendFailed.Public() || errcode.CodeInvalid.Retryable() || !errcode.CodeDisconnected.Retryable() {
		t.Fatal("code properties")
	}
}
