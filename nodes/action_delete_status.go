package nodes

import (
	"context"
	"encoding/json"
	"time"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

// DeleteStatusID is the id of the delete action. Workflows store it: never rename.
const DeleteStatusID = status.KindDelete

// DeleteStatusSpec describes the action that deletes a published status
// (API.md §5). Its input is schemas/status.delete.input.json.
func DeleteStatusSpec() Descriptor {
	return Descriptor{
		ID:      DeleteStatusID,
		Version: 1,
		Kind:    KindAction,
		Title:   "Delete a status",
		Description: "Delete a status published on the instance. deleteForEveryone revokes it on status@broadcast; " +
			"otherwise statusflow only forgets it.",
		Noun:   "Status",
		Input:  schemas.DeleteInput,
		Output: schemas.DeleteOutput,
		Samples: []Sample{{
			Title:  "Revoke a status for everyone",
			Input:  json.RawMessage(`{"messageId":"3EB0A1B2C3D4E5F6A7B8C9","deleteForEveryone":true}`),
			Output: json.RawMessage(`{"messageId":"3EB0A1B2C3D4E5F6A7B8C9","deleteType":"revoke","timestamp":"2026-11-25T12:00:00Z","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`),
		}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}

// DeleteOutput is the output of the delete action (schemas/status.delete.output.json).
type DeleteOutput struct {
	MessageID  string         `json:"messageId"`
	DeleteType string         `json:"deleteType"`
	Timestamp  time.Time      `json:"timestamp"`
	TraceID    string         `json:"traceId"`
	Origin     *status.Origin `json:"origin,omitempty"`
}

func deleteStatus(svc *status.Service) Handler {
	return func(ctx context.Context, call Call) (any, error) {
		res, err := runCommand[status.DeleteArgs](ctx, svc, call)
		if err != nil {
			return nil, err
		}
		out := &DeleteOutput{MessageID: res.MessageID, DeleteType: res.DeleteType, Timestamp: res.Timestamp, TraceID: res.TraceID}
		if !call.Command.Origin.IsZero() {
			o := call.Command.Origin
			out.Origin = &o
		}
		return out, nil
	}
}
