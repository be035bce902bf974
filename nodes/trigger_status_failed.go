package nodes

import (
	"encoding/json"

	"github.com/statusflow/statusflow/schemas"
)

// StatusFailedID is the id of the status.failed trigger, the same as its event type.
// Workflows store it: never rename.
const StatusFailedID = "status.failed"

// StatusFailedSpec describes the trigger that fires on status.failed events. It takes no
// input; its output is the event's data (schemas/event.status.failed.json).
func StatusFailedSpec() Descriptor {
	return Descriptor{
		ID:          StatusFailedID,
		Version:     1,
		Kind:        KindTrigger,
		Title:       "Status failed",
		Description: "Publishing a status failed: fires with the internal error status (e.g. media_download_failed), the message and the origin.",
		Noun:        "Status",
		Output:      schemas.EventData(StatusFailedID),
		Event:       StatusFailedID,
		Samples:     []Sample{{Title: "Status failed", Output: json.RawMessage(sampleOf(schemas.EventData(StatusFailedID)))}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}
