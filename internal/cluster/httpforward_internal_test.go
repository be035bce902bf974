package cluster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/natstest"
)

// An answer larger than a NATS message (a sandbox media file) comes back
// whole, in order, with its status and headers; the request's headers and
// body reach the owner's handler, and replica-only headers a caller sent
// are dropped.
func TestForwarder_HTTPAnswerInChunks(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(natstest.Start(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	f := NewForwarder(nc, nil, nil, ForwardConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	big := bytes.Repeat([]byte("0123456789abcdef"), int(nc.MaxPayload())/16*3+123) // > 3 messages
	var got *HTTPRequest
	f.ServeHTTP(func(_ context.Context, req *HTTPRequest) *HTTPResponse {
		got = req
		return &HTTPResponse{Status: 206, Header: http.Header{"Content-Type": {"video/mp4"}, "X-Thing": {"a", "b"}}, Body: big}
	})
	sub, err := nc.Subscribe(f.HTTPSubject("owner"), f.serveHTTP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe(); f.inflight.Wait() })
	resp, err := f.ForwardHTTP(context.Background(), "owner", &HTTPRequest{Method: "PUT", URI: "/api/x/sales?limit=3", Remote: "192.0.2.7:4000",
		Header: http.Header{"Authorization": {"Bearer t"}, "Idempotency-Key": {"k1"}, "Statusflow-Fwd-Status": {"200"}, "Connection": {"close"}},
		Body:   []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 206 || !bytes.Equal(resp.Body, big) || resp.Header.Get("Content-Type") != "video/mp4" || len(resp.Header["X-Thing"]) != 2 {
		t.Fatalf("answer: %d, %d bytes (want %d), headers %v", resp.Status, len(resp.Body), len(big), resp.Header)
	}
	for k := range resp.Header {
		if k == hdrSeq || k == hdrFinal || k == hdrStatus {
			t.Fatalf("answer carries the wire header %s", k)
		}
	}
	if got.Method != "PUT" || got.URI != "/api/x/sales?limit=3" || got.Remote != "192.0.2.7:4000" || string(got.Body) != `{"a":1}` ||
		got.Header.Get("Authorization") != "Bearer t" || got.Header.Get("Idempotency-Key") != "k1" {
		t.Fatalf("request at the owner: %+v", got)
	}
	if got.Header.Get("Connection") != "" || got.Header.Get("Statusflow-Fwd-Status") != "" {
		t.Fatalf("hop-by-hop or replica-only headers reached the owner: %v", got.Header)
	}
}
