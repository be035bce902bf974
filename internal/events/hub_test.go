package events_test

import (
	"context"
	"testing"

	"github.com/statusflow/statusflow/internal/events"
)

func TestHub_Send(t *testing.T) {
	t.Parallel()
	h := events.NewHub()
	all := h.Subscribe("")
	sales := h.Subscribe("sales")
	defer all.Close()
	h.PublishEvent(context.Background(), &events.CloudEvent{Type: "status.published", Instance: "sales"}, []byte(`{}`))
	h.Send("support", events.HubMessage{Type: "qr", Body: []byte(`{}`)})
	if len(all.C) != 2 || len(sales.C) != 1 {
		t.Fatalf("all got %d, sales got %d; want 2 and 1", len(all.C), len(sales.C))
	}
	if m := <-sales.C; m.Type != "status.published" {
		t.Fatalf("sales got %s", m.Type)
	}
	// A subscriber that does not read loses messages, counted; the sender never blocks.
	for i := 0; i < events.HubBuffer+10; i++ {
		h.Send("sales", events.HubMessage{Type: "x"})
	}
	if d := sales.Dropped(); d != 10 {
		t.Fatalf("dropped %d, want 10", d)
	}
	sales.Close()
	sales.Close()
	h.Send("sales", events.HubMessage{Type: "x"})
	if len(sales.C) != events.HubBuffer {
		t.Fatal("a closed subscription still receives")
	}
}
