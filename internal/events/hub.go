package events

import (
	"context"
	"sync"
	"sync/atomic"
)

// HubBuffer is how many messages a subscriber may fall behind before it
// loses some; at the console's 100 events/s that is 40 s of backlog.
const HubBuffer = 4096

// HubMessage is one message to a live subscriber: a stored event (Type is
// the event type, Body its CloudEvents JSON) or an in-process notice that is
// never stored (the QR codes of a pairing: Type "qr").
type HubMessage struct {
	Type string
	Body []byte
}

// Hub fans events out to live subscribers by instance (the console's
// Server-Sent Events). It is a [Publisher]: the Recorder hands it every event
// once committed. Sends never block the publisher: a subscriber whose buffer
// is full loses the message and learns how many it lost (Dropped).
type Hub struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
	// onActive, when set, is called after each Subscribe and Close (a
	// cluster replica follows the other replicas' events only while someone
	// watches: see [Hub.SetOnActive]).
	onActive func()
}

// SetOnActive makes h call f after every Subscribe and Close, outside its
// lock; f asks [Hub.Active]. Call before the hub is used.
func (h *Hub) SetOnActive(f func()) { h.onActive = f }

// Active reports whether anyone is subscribed.
func (h *Hub) Active() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs) > 0
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Subscription]struct{}{}} }

// Subscription receives its instances' messages on C until Close.
type Subscription struct {
	C        chan HubMessage
	hub      *Hub
	instance string // "" for every instance
	dropped  atomic.Int64
	once     sync.Once
}

// Dropped is how many messages were lost because C was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Close unsubscribes. Safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.hub.mu.Lock()
		delete(s.hub.subs, s)
		s.hub.mu.Unlock()
		if s.hub.onActive != nil {
			s.hub.onActive()
		}
	})
}

// Subscribe starts receiving the messages of instance ("" for every
// instance: the account's console).
func (h *Hub) Subscribe(instance string) *Subscription {
	s := &Subscription{C: make(chan HubMessage, HubBuffer), hub: h, instance: instance}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	if h.onActive != nil {
		h.onActive()
	}
	return s
}

// Send delivers a message to instance's subscribers without blocking.
func (h *Hub) Send(instance string, m HubMessage) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.instance != "" && s.instance != instance {
			continue
		}
		select {
		case s.C <- m:
		default:
			s.dropped.Add(1)
		}
	}
}

// PublishEvent implements [Publisher].
func (h *Hub) PublishEvent(_ context.Context, ev *CloudEvent, body []byte) error {
	h.Send(ev.Instance, HubMessage{Type: ev.Type, Body: body})
	return nil
}
