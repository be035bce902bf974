package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
)

// sseEvent is one Server-Sent Event of GET /api/events/stream.
type sseEvent struct {
	Type string
	Data string
}

// openStream opens r's live stream of instance over HTTP and returns its
// events as they arrive.
func openStream(t *testing.T, r *apptest.Replica, instance, tok string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.Addr()+"/api/events/stream/"+instance, nil)
	req.Header.Set("token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream on %s: %d", r.ID, resp.StatusCode)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Type = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.Type != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

// next returns the next event on c that is not an instance.* event,
// failing after a minute.
func next(t *testing.T, c <-chan sseEvent) sseEvent {
	return nextOf(t, "", c)
}

func nextOf(t *testing.T, name string, c <-chan sseEvent) sseEvent {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev := <-c:
			if !strings.HasPrefix(ev.Type, "instance.") {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event on the %s stream within a minute", name)
		}
	}
}

// The console's live stream may be open on any replica behind a load
// balancer, while an instance's events are recorded, and its phone linked,
// on its owner: a stream on any replica gets every replica's events and QR
// codes for the instance, each exactly once, in order.
func TestCluster_LiveStreamOnAnyReplica(t *testing.T) {
	t.Parallel()
	c := apptest.NewCluster(t, apptest.ClusterOptions{Replicas: 2, LeaseTTL: time.Minute})
	owner, other := c.Replicas[0], c.Replicas[1]
	tok := owner.CreateInstance("live", "sandbox")
	if got := c.Owner("live"); got != owner.ID {
		t.Fatalf("owner = %q, want %s", got, owner.ID)
	}
	streams := map[string]<-chan sseEvent{"owner's": openStream(t, owner, "live", tok), "other's": openStream(t, other, "live", tok)}
	for name, s := range streams {
		if ev := next(t, s); ev.Type != "hello" {
			t.Fatalf("%s stream starts with %s", name, ev.Type)
		}
	}
	// One publication run on the owner, one forwarded to it by the other
	// replica, a QR code of a pairing running on the owner (the hook
	// whatsmeow calls), then a third publication.
	var ids []string
	publish := func(via *apptest.Replica, text string) {
		r := via.Do("POST", "/api/message/status/live", tok, map[string]any{"type": "text", "message": text})
		if r.Code != 200 {
			t.Fatalf("publish via %s: %d %s", via.ID, r.Code, r.Raw)
		}
		id, _ := r.Data()["messageId"].(string)
		ids = append(ids, id)
	}
	publish(owner, "on the owner")
	publish(other, "forwarded")
	owner.Server.NotifyQR("live", "2@qr-code-of-the-test")
	publish(owner, "after the QR")

	// Events of one status arrive in order; the QR code, a separate
	// message, may come before or after the forwarded publication's events.
	for name, s := range streams {
		seen := map[string]int{}
		for len(seen) < 7 {
			ev := nextOf(t, name, s)
			key := ev.Type
			if ev.Type != "qr" {
				var ce struct {
					Data struct {
						MessageID string `json:"messageId"`
					} `json:"data"`
				}
				json.Unmarshal([]byte(ev.Data), &ce)
				key += " " + ce.Data.MessageID
				if ev.Type == "status.published" && seen["status.accepted "+ce.Data.MessageID] == 0 {
					t.Fatalf("%s stream: %s before its status.accepted", name, key)
				}
			} else {
				var qr map[string]any
				if json.Unmarshal([]byte(ev.Data), &qr) != nil || qr["qrCode"] != "2@qr-code-of-the-test" ||
					!strings.HasPrefix(qr["qrCodeBase64"].(string), "data:image/png;base64,") {
					t.Fatalf("%s stream: qr %.100s", name, ev.Data)
				}
			}
			if seen[key]++; seen[key] > 1 {
				t.Fatalf("%s stream: %s twice", name, key)
			}
		}
		for _, id := range ids {
			for _, typ := range []string{"status.accepted", "status.published"} {
				if seen[typ+" "+id] != 1 {
					t.Fatalf("%s stream: %s of %s seen %d times (all: %v)", name, typ, id, seen[typ+" "+id], seen)
				}
			}
		}
	}
}

// An instance's stream keeps matching its instance's events after other
// requests: the name it filters on was a Fiber parameter pointing into the
// request's buffer, reused by the next request once the handler returned,
// so the stream went silent after its hello (single process, no cluster).
func TestLiveStream_InstanceStreamAfterOtherRequests(t *testing.T) {
	t.Parallel()
	a := apptest.New(t, apptest.Options{})
	tok := a.CreateInstance("solo", "sandbox")
	s := openStream(t, &apptest.Replica{App: a, ID: "single"}, "solo", tok)
	if ev := next(t, s); ev.Type != "hello" {
		t.Fatalf("stream starts with %s", ev.Type)
	}
	for i := range 3 {
		r := a.Do("POST", "/api/message/status/solo", tok, map[string]any{"type": "text", "message": "x"})
		id, _ := r.Data()["messageId"].(string)
		for _, typ := range []string{"status.accepted", "status.published"} {
			if ev := next(t, s); ev.Type != typ || !strings.Contains(ev.Data, id) {
				t.Fatalf("publication %d: %s %.80s, want %s of %s", i, ev.Type, ev.Data, typ, id)
			}
		}
	}
}
