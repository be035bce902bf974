package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/status"
)

func sampleEvent() status.Event {
	return status.Event{ID: "0190b4a0-1234-7abc-8def-0123456789ab", Type: "status.published", Instance: "sales", Time: time.Date(2026, 11, 25, 16, 0, 0, 123456789, time.UTC),
		TraceParent: "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01", Origin: status.Origin{Platform: "n8n", WorkflowID: "wf1", ExecutionID: "42", NodeName: "Publish <&>"},
		Data: status.PublishedData{MessageID: "3EB0ABCDEF0123456789AB", MessageType: "text", Chat: status.Chat{JID: "status@broadcast"}, Timestamp: time.Now(), Source: `bench "q" <b>`, TraceID: "0123456789abcdef0123456789abcdef"}}
}

// Encode writes exactly what json.Marshal writes, data included.
func TestCloudEvent_EncodeIsMarshal(t *testing.T) {
	for _, ev := range []status.Event{sampleEvent(), {ID: "x", Type: "instance.state", Instance: "a", Time: time.Now()}} {
		ce, err := ToCloudEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(ce)
		got, err := ce.Encode()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Encode: %s, json.Marshal: %s (%v)", got, want, err)
		}
		ce.Data = nil
		want, _ = json.Marshal(ce)
		if got, _ := ce.Encode(); !bytes.Equal(got, want) {
			t.Fatalf("no data: %s, want %s", got, want)
		}
	}
}

func BenchmarkCloudEvent_Encode(b *testing.B) {
	ce, _ := ToCloudEvent(sampleEvent())
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			ce.Encode()
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(ce)
		}
	})
}
