package nodes

import (
	"encoding/json"

	"github.com/statusflow/statusflow/schemas"
)

// InstanceStateID is the id of the instance.state trigger, the same as its event type.
// Workflows store it: never rename.
const InstanceStateID = "instance.state"

// InstanceStateSpec describes the trigger that fires on instance.state events. It takes no
// input; its output is the event's data (schemas/event.instance.state.json).
func InstanceStateSpec() Descriptor {
	return Descriptor{
		ID:          InstanceStateID,
		Version:     1,
		Kind:        KindTrigger,
		Title:       "Instance state changed",
		Description: "An instance's connection state changed (connected, connecting, disconnected, loggedout).",
		Noun:        "Instance",
		Output:      schemas.EventData(InstanceStateID),
		Event:       InstanceStateID,
		Samples:     []Sample{{Title: "Instance state changed", Output: json.RawMessage(sampleOf(schemas.EventData(InstanceStateID)))}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}
