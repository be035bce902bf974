package nodes

import (
	"encoding/json"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

// StatusViewedID is the id of the status.viewed trigger, the same as its event type.
// Workflows store it: never rename.
const StatusViewedID = status.EventStatusViewed

// StatusViewedSpec describes the trigger that fires when a viewer first
// sees a status. Its output is the event's data (schemas/event.status.viewed.json).
func StatusViewedSpec() Descriptor {
	return Descriptor{
		ID:          StatusViewedID,
		Version:     1,
		Kind:        KindTrigger,
		Title:       "Status viewed",
		Description: "A contact viewed (or played) a status: fires once per viewer with the viewer, the kind of receipt and the status's view count, on the status's trace.",
		Noun:        "View",
		Output:      schemas.EventData(StatusViewedID),
		Event:       StatusViewedID,
		Samples:     []Sample{{Title: "Status viewed", Output: json.RawMessage(sampleOf(schemas.EventData(StatusViewedID)))}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}
