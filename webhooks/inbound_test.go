package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/nodes"
	"github.com/statusflow/statusflow/webhooks"
)

// stubExecutor records executions and answers with err (nil: success).
type stubExecutor struct {
	mu    sync.Mutex
	calls []execCall
	err   error
}

type execCall struct {
	node string
	req  nodes.ExecuteRequest
}

func (s *stubExecutor) Execute(_ context.Context, node string, req nodes.ExecuteRequest) (*nodes.ExecuteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, execCall{node, req})
	if s.err != nil {
		return nil, s.err
	}
	return &nodes.ExecuteResult{TraceID: "t1", Output: map[string]any{"ok": true}}, nil
}

func (s *stubExecutor) last() execCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[len(s.calls)-1]
}

func (s *stubExecutor) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// signed returns Standard Webhooks headers for body, signed with secret at ts.
func signed(t testing.TB, secret, msgID string, ts time.Time, body []byte) http.Header {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(msgID, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", itoa(ts.Unix()))
	h.Set("webhook-signature", sig)
	return h
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestService_Receive(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			exerciseReceive(t, d)
		})
	}
}

func exerciseReceive(t *testing.T, d store.Dialect) {
	ctx := context.Background()
	body := []byte(`{"type":"text","message":"Flash sale"}`)

	setupHook := func(t *testing.T, node string) (*webhooks.Service, *stubExecutor, *webhooks.InboundHook) {
		t.Helper()
		exec := &stubExecutor{}
		svc, _ := setup(t, d, nil, exec)
		h, err := svc.CreateInbound(ctx, "sales", webhooks.InboundInput{Node: node})
		if err != nil || !strings.HasPrefix(h.Secret, "whsec_") || h.URL != webhooks.InboundPath(h.ID) {
			t.Fatalf("create: %+v %v", h, err)
		}
		return svc, exec, h
	}

	t.Run("GoodSignature", func(t *testing.T) {
		t.Parallel()
		svc, exec, h := setupHook(t, "")
		res, err := svc.Receive(ctx, h.ID, body, signed(t, h.Secret, "msg_1", time.Now(), body), "")
		if err != nil || res.TraceID != "t1" || res.Node != status.KindPublish || res.Instance != "sales" {
			t.Fatalf("receive: %+v %v", res, err)
		}
		c := exec.last()
		var extra map[string]string
		json.Unmarshal(c.req.Origin.Extra, &extra)
		if c.node != status.KindPublish || c.req.Instance != "sales" || string(c.req.Input) != string(body) || c.req.Origin.Platform != "webhook" ||
			extra["hookId"] != h.ID || extra["webhookId"] != "msg_1" || !strings.Contains(c.req.IdempotencyKey, "msg_1") {
			t.Fatalf("execute call %+v extra %v", c, extra)
		}
	})

	t.Run("BadSignature", func(t *testing.T) {
		t.Parallel()
		svc, exec, h := setupHook(t, "")
		hdr := signed(t, webhooks.NewSecret(), "msg_1", time.Now(), body)
		if _, err := svc.Receive(ctx, h.ID, body, hdr, ""); !errors.Is(err, webhooks.ErrBadSignature) {
			t.Fatalf("other secret: %v", err)
		}
		hdr = signed(t, h.Secret, "msg_2", time.Now(), body)
		tampered := []byte(`{"type":"text","message":"Flash sale!"}`)
		if _, err := svc.Receive(ctx, h.ID, tampered, hdr, ""); !errors.Is(err, webhooks.ErrBadSignature) {
			t.Fatalf("tampered body: %v", err)
		}
		if _, err := svc.Receive(ctx, h.ID, body, http.Header{}, ""); !errors.Is(err, webhooks.ErrMissingSignature) {
			t.Fatalf("no headers: %v", err)
		}
		if exec.count() != 0 {
			t.Fatal("executed an unsigned request")
		}
	})

	t.Run("OldTimestamp", func(t *testing.T) {
		t.Parallel()
		svc, exec, h := setupHook(t, "")
		for _, ts := range []time.Time{time.Now().Add(-6 * time.Minute), time.Now().Add(6 * time.Minute)} {
			if _, err := svc.Receive(ctx, h.ID, body, signed(t, h.Secret, "msg_old", ts, body), ""); !errors.Is(err, webhooks.ErrTimestamp) {
				t.Fatalf("timestamp %s: %v", ts, err)
			}
		}
		// Within tolerance is fine.
		if _, err := svc.Receive(ctx, h.ID, body, signed(t, h.Secret, "msg_ok", time.Now().Add(-4*time.Minute), body), ""); err != nil {
			t.Fatal(err)
		}
		if exec.count() != 1 {
			t.Fatalf("%d executions", exec.count())
		}
	})

	t.Run("ReplayedID", func(t *testing.T) {
		t.Parallel()
		svc, exec, h := setupHook(t, "")
		hdr := signed(t, h.Secret, "msg_same", time.Now(), body)
		if _, err := svc.Receive(ctx, h.ID, body, hdr, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Receive(ctx, h.ID, body, hdr, ""); !errors.Is(err, webhooks.ErrReplayed) {
			t.Fatalf("replay: %v", err)
		}
		// Re-signed with a fresh timestamp, the same id is still a replay.
		if _, err := svc.Receive(ctx, h.ID, body, signed(t, h.Secret, "msg_same", time.Now().Add(time.Second), body), ""); !errors.Is(err, webhooks.ErrReplayed) {
			t.Fatalf("re-signed replay: %v", err)
		}
		if exec.count() != 1 {
			t.Fatalf("%d executions", exec.count())
		}
	})

	t.Run("RetryableFailureForgetsID", func(t *testing.T) {
		t.Parallel()
		svc, exec, h := setupHook(t, "")
		exec.err = errcode.ErrDisconnected
		hdr := signed(t, h.Secret, "msg_r", time.Now(), body)
		if _, err := svc.Receive(ctx, h.ID, body, hdr, ""); !errors.Is(err, errcode.ErrDisconnected) {
			t.Fatalf("first: %v", err)
		}
		exec.mu.Lock()
		exec.err = nil
		exec.mu.Unlock()
		if _, err := svc.Receive(ctx, h.ID, body, hdr, ""); err != nil {
			t.Fatalf("retry after a retryable failure: %v", err)
		}
		if a, b := exec.calls[0].req.IdempotencyKey, exec.calls[1].req.IdempotencyKey; a != b || a == "" {
			t.Fatalf("idempotency keys %q %q", a, b)
		}
	})

	t.Run("EnvelopeAndNodeRules", func(t *testing.T) {
		t.Parallel()
		svc, exec, h := setupHook(t, "")
		env := []byte(`{"node":"status.publish","instance":"sales","input":{"type":"text","message":"hi"},"origin":{"workflowId":"crm-1","platform":"zapier","extra":{"k":"v"}},"idempotencyKey":"k1"}`)
		if _, err := svc.Receive(ctx, h.ID, env, signed(t, h.Secret, "msg_e1", time.Now(), env), ""); err != nil {
			t.Fatal(err)
		}
		c := exec.last()
		var extra map[string]string
		json.Unmarshal(c.req.Origin.Extra, &extra)
		if string(c.req.Input) != `{"type":"text","message":"hi"}` || c.req.Origin.WorkflowID != "crm-1" || c.req.Origin.Platform != "webhook" ||
			extra["k"] != "v" || extra["hookId"] != h.ID || c.req.IdempotencyKey != "k1" {
			t.Fatalf("call %+v", c)
		}
		for name, b := range map[string]string{
			"OtherNode":     `{"node":"status.delete","input":{"messageId":"x"}}`,
			"OtherInstance": `{"instance":"support","input":{"type":"text","message":"hi"}}`,
			"UnknownField":  `{"input":{"type":"text","message":"hi"},"extra":1}`,
			"NotObject":     `[1,2]`,
		} {
			_, err := svc.Receive(ctx, h.ID, []byte(b), signed(t, h.Secret, "msg_"+name, time.Now(), []byte(b)), "")
			if se := errcode.AsError(err); err == nil || se.Code != errcode.CodeInvalid {
				t.Errorf("%s: %v", name, err)
			}
		}
		// A hook for any node takes the envelope's node.
		anyHook, err := svc.CreateInbound(ctx, "sales", webhooks.InboundInput{Node: webhooks.AnyNode})
		if err != nil {
			t.Fatal(err)
		}
		del := []byte(`{"node":"status.delete","input":{"messageId":"3EB0AA"}}`)
		if _, err := svc.Receive(ctx, anyHook.ID, del, signed(t, anyHook.Secret, "msg_d", time.Now(), del), ""); err != nil || exec.last().node != "status.delete" {
			t.Fatalf("any node: %v %+v", err, exec.last())
		}
	})

	t.Run("RotateListDelete", func(t *testing.T) {
		t.Parallel()
		svc, _, h := setupHook(t, "")
		rotated, err := svc.RotateInbound(ctx, "sales", h.ID)
		if err != nil || rotated.Secret == h.Secret || rotated.PreviousUntil == nil {
			t.Fatalf("rotate: %+v %v", rotated, err)
		}
		for i, sec := range []string{h.Secret, rotated.Secret} {
			id := "msg_rot" + itoa(int64(i))
			if _, err := svc.Receive(ctx, h.ID, body, signed(t, sec, id, time.Now(), body), ""); err != nil {
				t.Fatalf("secret %d during grace: %v", i, err)
			}
		}
		list, err := svc.ListInbound(ctx, "sales")
		if err != nil || len(list) != 1 || list[0].Secret != "" {
			t.Fatalf("list %+v %v", list, err)
		}
		if _, err := svc.RotateInbound(ctx, "support", h.ID); !errors.Is(err, webhooks.ErrInboundNotFound) {
			t.Fatalf("rotate on another instance: %v", err)
		}
		if err := svc.DeleteInbound(ctx, "sales", h.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Receive(ctx, h.ID, body, signed(t, rotated.Secret, "msg_gone", time.Now(), body), ""); !errors.Is(err, webhooks.ErrInboundNotFound) {
			t.Fatalf("deleted hook: %v", err)
		}
	})
}
