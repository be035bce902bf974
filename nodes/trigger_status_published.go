package nodes

import (
	"encoding/json"

	"github.com/statusflow/statusflow/schemas"
)

// StatusPublishedID is the id of the status.published trigger, the same as its event type.
// Workflows store it: never rename.
const StatusPublishedID = "status.published"

// StatusPublishedSpec describes the trigger that fires on status.published events. It takes no
// input; its output is the event's data (schemas/event.status.published.json).
func StatusPublishedSpec() Descriptor {
	return Descriptor{
		ID:          StatusPublishedID,
		Version:     1,
		Kind:        KindTrigger,
		Title:       "Status published",
		Description: "A status reached WhatsApp (or the sandbox): fires with the published status, its trace id and origin.",
		Noun:        "Status",
		Output:      schemas.EventData(StatusPublishedID),
		Event:       StatusPublishedID,
		Samples:     []Sample{{Title: "Status published", Output: json.RawMessage(sampleOf(schemas.EventData(StatusPublishedID)))}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}
