package nodes

import (
	"context"
	"encoding/json"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

// PublishStatusID is the id of the publish action. Workflows store it: never rename.
const PublishStatusID = status.KindPublish

// PublishStatusSpec describes the action that publishes a WhatsApp Status
// (Send Status, API.md §4). Its input is schemas/status.publish.input.json.
func PublishStatusSpec() Descriptor {
	return Descriptor{
		ID:      PublishStatusID,
		Version: 1,
		Kind:    KindAction,
		Title:   "Publish a status",
		Description: "Publish a WhatsApp Status (a 24-hour story) of text, image, video or audio on an instance. " +
			"Media are fetched from mediaUrl, checked and converted (audio to Opus voice notes, video trimmed to 30 s).",
		Noun:   "Status",
		Input:  schemas.PublishInput,
		Output: schemas.PublishOutput,
		Samples: []Sample{
			{
				Title:  "Text status with a background colour and font",
				Input:  json.RawMessage(`{"type":"text","message":"Black Friday starts now!","backgroundColor":"#128C7E","font":"serif","source":"marketing-bot"}`),
				Output: json.RawMessage(`{"messageId":"3EB0A1B2C3D4E5F6A7B8C9","messageType":"text","chat":{"jid":"status@broadcast"},"timestamp":"2026-11-25T12:00:00Z","source":"marketing-bot","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`),
			},
			{
				Title:  "Plain text status",
				Input:  json.RawMessage(`{"type":"text","message":"Open until 8 pm today"}`),
				Output: json.RawMessage(`{"messageId":"3EB0A1B2C3D4E5F6A7B8CA","messageType":"text","chat":{"jid":"status@broadcast"},"timestamp":"2026-11-25T12:00:00Z","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`),
			},
		},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}

// publishStatus returns the handler: the validated input becomes
// [status.PublishArgs]; the output is the core's [status.Result].
func publishStatus(svc *status.Service) Handler {
	return func(ctx context.Context, call Call) (any, error) {
		return runCommand[status.PublishArgs](ctx, svc, call)
	}
}
