// Package events turns the core's events into CloudEvents 1.0 JSON, stores
// them in the event log and fans them out (NATS, webhook outbox).
package events

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/statusflow/statusflow/internal/status"
)

// CloudEvent is the CloudEvents 1.0 structured JSON form of an event. The
// `traceparent` extension carries the W3C trace context and `instance` the
// instance name. `origin` (which platform, workflow and execution asked) is
// an object, and CloudEvents context attributes may only be strings,
// integers, booleans, binary, URIs or timestamps (the SDKs refuse an
// object), so it travels inside data: data.origin. [CloudEvent.Origin]
// is that value, filled by [ToCloudEvent] and when decoding.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
	Instance        string          `json:"instance"`
	Origin          status.Origin   `json:"-"` // data.origin
	Data            json.RawMessage `json:"data"`
}

// SchemaBase is the `$id` prefix of our JSON Schemas.
const SchemaBase = "https://statusflow.dev/schemas/"

// ToCloudEvent converts a core event. The `source` is the instance's URI
// reference, the `type` the event type itself (status.published, …).
func ToCloudEvent(ev status.Event) (*CloudEvent, error) {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return nil, err
	}
	if data, err = withOrigin(data, ev.Origin); err != nil {
		return nil, err
	}
	return &CloudEvent{
		SpecVersion:     "1.0",
		ID:              ev.ID,
		Source:          "/statusflow/instances/" + ev.Instance,
		Type:            ev.Type,
		Subject:         ev.Instance,
		Time:            ev.Time.UTC(),
		DataContentType: "application/json",
		DataSchema:      SchemaBase + "event." + ev.Type + ".json",
		TraceParent:     ev.TraceParent,
		Instance:        ev.Instance,
		Origin:          ev.Origin,
		Data:            data,
	}, nil
}

// withOrigin adds "origin" to the data object (appended, without decoding
// data again: it comes from json.Marshal). Data that is not an object, or
// that has its own origin, is left as it is.
func withOrigin(data []byte, o status.Origin) ([]byte, error) {
	if len(data) < 2 || data[0] != '{' || bytes.Contains(data, []byte(`"origin":`)) {
		return data, nil
	}
	ob, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data)+len(ob)+12)
	out = append(out, data[:len(data)-1]...)
	if len(bytes.TrimSpace(data[1:len(data)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, `"origin":`...)
	out = append(out, ob...)
	return append(out, '}'), nil
}

// UnmarshalJSON decodes the structured form and sets Origin from data.origin.
func (ce *CloudEvent) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*envelope)(ce)); err != nil {
		return err
	}
	var d struct {
		Origin *status.Origin `json:"origin"`
	}
	if len(ce.Data) > 0 && ce.Data[0] == '{' {
		if err := json.Unmarshal(ce.Data, &d); err != nil {
			return err
		}
		if d.Origin != nil {
			ce.Origin = *d.Origin
		}
	}
	return nil
}

// envelope is CloudEvent without its methods, for Encode and UnmarshalJSON.
type envelope CloudEvent

// Encode is the event's JSON, as json.Marshal writes it, without checking
// and compacting Data a second time: Data comes from json.Marshal (in
// ToCloudEvent), and encoding/json would scan a json.RawMessage byte by byte
// again on every event.
func (ce *CloudEvent) Encode() ([]byte, error) {
	head, err := json.Marshal(struct {
		*envelope
		Data json.RawMessage `json:"data,omitempty"` // shadows envelope.Data: written below
	}{envelope: (*envelope)(ce)})
	if err != nil {
		return nil, err
	}
	data := []byte(ce.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	out := make([]byte, 0, len(head)+len(`,"data":`)+len(data))
	out = append(out, head[:len(head)-1]...) // head ends with the object's '}'
	out = append(out, `,"data":`...)
	out = append(out, data...)
	return append(out, '}'), nil
}
