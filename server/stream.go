package server

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/statusflow/statusflow/internal/events"
)

// streamHeartbeat is how often an idle stream sends a comment line, so
// proxies keep it open and a gone client is noticed.
const streamHeartbeat = 15 * time.Second

// registerStream adds the live event stream (Server-Sent Events) when the
// server has a hub.
func (s *Server) registerStream() {
	if s.deps.Hub == nil {
		return
	}
	s.Handle(Route{Method: "GET", Path: "/api/events/stream", Auth: AuthAny, Tag: "events",
		Summary:   "Live events as Server-Sent Events: every instance the token may see (the account's: all; an instance token's: its own). Send the token in a header (fetch-based SSE), never in the URL.",
		Responses: Responses{200: ""}, ContentType: "text/event-stream"}, s.stream)
	s.Handle(Route{Method: "GET", Path: "/api/events/stream/:instance", Auth: AuthInstance, Tag: "events",
		Summary:   "Live events of one instance as Server-Sent Events: instance.state, status.*, and qr (each QR code of a pairing, with its PNG)",
		Responses: Responses{200: ""}, ContentType: "text/event-stream"}, s.stream)
}

// qrView is the data of a `qr` stream message.
type qrView struct {
	Instance string `json:"instance"`
	Code     string `json:"qrCode"`
	PNG      string `json:"qrCodeBase64"`
	At       string `json:"at"`
}

// qrCodes keeps the last QR code of each instance's running pairing, so a
// stream opened after it was shown starts with it.
type qrCodes struct {
	mu      sync.Mutex
	last    map[string][]byte
	publish func(instance string, body []byte)
}

// NotifyQR is [whatsapp.Manager.OnQR]: it renders the code as a PNG and
// sends it to the instance's live streams. QR codes never reach the event
// log or webhooks, nor NATS unless clustering is on (SetQRPublisher: a
// core NATS message, never stored).
func (s *Server) NotifyQR(instance, code string) {
	if s.deps.Hub == nil {
		return
	}
	png, err := qrcode.Encode(code, qrcode.Medium, 256)
	if err != nil {
		s.log.Warn("render QR code", "instance", instance, "err", err)
		return
	}
	b, _ := json.Marshal(qrView{Instance: instance, Code: code, PNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		At: time.Now().UTC().Format(time.RFC3339Nano)})
	s.qr.mu.Lock()
	if s.qr.last == nil {
		s.qr.last = map[string][]byte{}
	}
	s.qr.last[instance] = b
	publish := s.qr.publish
	s.qr.mu.Unlock()
	s.deps.Hub.Send(instance, events.HubMessage{Type: "qr", Body: b})
	if publish != nil {
		publish(instance, b) // the other replicas' streams (SetQRPublisher)
	}
}

// SetQRPublisher makes NotifyQR also hand each rendered QR message to
// publish: with clustering on, a phone is linked on the instance's owner
// while the console's stream may be open on any replica, so the owner
// publishes its codes on NATS and the other replicas relay them to their
// streams (internal/app). Call before serving.
func (s *Server) SetQRPublisher(publish func(instance string, body []byte)) {
	s.qr.mu.Lock()
	s.qr.publish = publish
	s.qr.mu.Unlock()
}

// stream is GET /api/events/stream[/:instance]. It first sends `hello` (what
// the stream covers) and the last QR code of a running pairing, then every
// message as it happens: `event: <type>`, `data: <CloudEvent JSON>`. A
// client that falls more than [events.HubBuffer] messages behind gets a
// `dropped` message with the count lost.
func (s *Server) stream(c *fiber.Ctx) error {
	p := PrincipalOf(c)
	// A copy: Fiber's parameters point into the request's buffer, which is
	// reused for other requests once this handler returns, while the stream
	// (and its hub subscription, filtering on this name) lives on. Without
	// it, an instance's stream stopped matching its events as soon as
	// another request reused the buffer.
	inst := strings.Clone(c.Params("instance"))
	if inst == "" && !p.Account {
		inst = p.Instance
	}
	sub := s.deps.Hub.Subscribe(inst)
	var first [][]byte
	s.qr.mu.Lock()
	for name, b := range s.qr.last {
		if inst == "" || name == inst {
			first = append(first, b)
		}
	}
	s.qr.mu.Unlock()
	hello, _ := json.Marshal(fiber.Map{"instance": inst, "heartbeatSeconds": int(streamHeartbeat / time.Second)})

	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache, no-store")
	c.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	closing := s.closing
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer sub.Close()
		var id int64
		write := func(typ string, data []byte) error {
			id++
			w.WriteString("id: ")
			w.WriteString(strconv.FormatInt(id, 10))
			w.WriteString("\nevent: ")
			w.WriteString(typ)
			w.WriteString("\ndata: ")
			w.Write(data)
			w.WriteString("\n\n")
			return nil
		}
		write("hello", hello)
		for _, b := range first {
			write("qr", b)
		}
		if w.Flush() != nil {
			return
		}
		tick := time.NewTicker(streamHeartbeat)
		defer tick.Stop()
		var reported int64
		for {
			select {
			case <-closing:
				return
			case <-tick.C:
				w.WriteString(": ping\n\n")
			case m := <-sub.C:
				write(m.Type, m.Body)
				// Drain what is already queued before flushing: one write
				// system call for a burst.
				for n := len(sub.C); n > 0; n-- {
					m := <-sub.C
					write(m.Type, m.Body)
				}
			}
			if d := sub.Dropped(); d > reported {
				reported = d
				write("dropped", []byte(`{"dropped":`+strconv.FormatInt(d, 10)+`}`))
			}
			if w.Flush() != nil {
				return // the client went away
			}
		}
	})
	return nil
}

// whoami is GET /api/whoami: what the caller's token may see, so a client
// (the console) shows only that.
func (s *Server) whoami(c *fiber.Ctx) error {
	p := PrincipalOf(c)
	if p.Account {
		return OK(c, "Account token", fiber.Map{"data": fiber.Map{"kind": "account"}})
	}
	return OK(c, "Instance token", fiber.Map{"data": fiber.Map{"kind": "instance", "instance": p.Instance}})
}
