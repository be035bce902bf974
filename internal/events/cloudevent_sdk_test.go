package events_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

// TestCloudEvent_SDK checks every event type with the official CloudEvents
// Go SDK: the structured JSON statusflow stores, publishes on NATS and POSTs
// to webhooks decodes and validates as a CloudEvents 1.0 event, its
// extensions are valid attributes, data matches the type's schema
// (schemas/event.<type>.json), and the origin travels in data.origin.
func TestCloudEvent_SDK(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	origin := status.Origin{Platform: "n8n", WorkflowID: "wf1", WorkflowName: "Orders", ExecutionID: "42", NodeName: "Post status", Source: "crm",
		Extra: json.RawMessage(`{"k":1}`)}
	trace := "0123456789abcdef0123456789abcdef"
	cases := map[string]any{
		"status.accepted":  status.AcceptedData{MessageID: "3EB0A", MessageType: "text", Source: "crm", TraceID: trace},
		"status.published": status.PublishedData{MessageID: "3EB0A", MessageType: "text", Chat: status.Chat{JID: "status@broadcast"}, Timestamp: now, Source: "crm", TraceID: trace},
		"status.failed":    status.FailedData{MessageID: "3EB0A", MessageType: "image", TraceID: trace, Status: "media_download_failed", Message: "Failed to download media"},
		"status.deleted":   status.DeletedData{MessageID: "3EB0A", DeleteType: "revoke", Timestamp: now, TraceID: trace},
		"instance.state":   status.InstanceStateData{State: "connected", JID: "5511999999999@s.whatsapp.net", Reason: "connected"},
		"status.viewed":    status.ViewedData{MessageID: "3EB0A", Viewer: "5511999990000@s.whatsapp.net", Kind: "read", Timestamp: now, Views: 1, TraceID: trace},
		"status.scheduled": status.ScheduledData{ScheduleID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Action: "publish", MessageID: "3EB0A", MessageType: "text", DueAt: now, TraceID: trace},
		"instance.owner":   status.InstanceOwnerData{Replica: "r2", Change: "taken", Owner: "r2"},
		"status.cancelled": status.CancelledData{ScheduleID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Action: "publish", MessageID: "3EB0A", DueAt: now, TraceID: trace},
	}
	v := schemas.Default()
	// Every event type with a data schema is checked: a new one needs a case.
	var types []string
	for _, n := range v.Names() {
		if typ, ok := strings.CutPrefix(n, "event."); ok {
			types = append(types, typ)
			if cases[typ] == nil {
				t.Errorf("event type %s has no case here", typ)
			}
		}
	}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			if v.Raw(schemas.EventData(typ)) == nil {
				t.Fatalf("no schema for %s", typ)
			}
			ce, err := events.ToCloudEvent(status.Event{ID: "0190b4a0-1234-7abc-8def-0123456789ab", Type: typ, Instance: "sales", Time: now,
				TraceParent: "00-" + trace + "-0123456789abcdef-01", Origin: origin, Data: cases[typ]})
			if err != nil {
				t.Fatal(err)
			}
			body, err := ce.Encode()
			if err != nil {
				t.Fatal(err)
			}
			var e cloudevents.Event
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("SDK refuses %s: %v", body, err)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("SDK: invalid event %s: %v", body, err)
			}
			if e.Type() != typ || e.Source() != "/statusflow/instances/sales" || e.DataContentType() != "application/json" {
				t.Fatalf("attributes: %s", e)
			}
			for name, val := range e.Extensions() {
				if _, isString := val.(string); !isString {
					t.Errorf("extension %s is %T, want a string", name, val)
				}
			}
			if e.Extensions()["traceparent"] != "00-"+trace+"-0123456789abcdef-01" || e.Extensions()["instance"] != "sales" {
				t.Errorf("extensions %v", e.Extensions())
			}
			if _, ok := e.Extensions()["origin"]; ok {
				t.Errorf("origin is still a context attribute")
			}
			if err := v.ValidateJSON(schemas.EventData(typ), e.Data()); err != nil {
				t.Errorf("data %s: %v", e.Data(), err)
			}
			var data struct {
				Origin status.Origin `json:"origin"`
			}
			if err := json.Unmarshal(e.Data(), &data); err != nil || data.Origin.WorkflowID != "wf1" || data.Origin.NodeName != "Post status" || string(data.Origin.Extra) != `{"k":1}` {
				t.Errorf("data.origin %+v (%v) in %s", data.Origin, err, e.Data())
			}
			// Our own decoder gives the origin back.
			var back events.CloudEvent
			if err := json.Unmarshal(body, &back); err != nil || back.Origin.ExecutionID != "42" || back.Type != typ {
				t.Errorf("decoded %+v (%v)", back, err)
			}
		})
	}
	// The SDK does refuse an object-valued attribute (the form before this
	// change), so the checks above can fail.
	t.Run("ObjectAttributeRefused", func(t *testing.T) {
		old := `{"specversion":"1.0","id":"1","source":"/s","type":"status.published","origin":{"platform":"n8n"},"data":{}}`
		var e cloudevents.Event
		if err := json.Unmarshal([]byte(old), &e); err == nil {
			if err := e.Validate(); err == nil {
				t.Fatal("the SDK accepted an object attribute")
			}
		}
	})
}
