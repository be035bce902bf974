package nodes

import (
	"encoding/json"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

// Origin says who asked a node to run (platform, workflow, execution…). It
// is the core's [status.Origin], named here for the front doors that talk to
// nodes and not to the core.
type Origin = status.Origin

// ExecuteRequest is one execution of a node, whichever front door it came
// through (POST /api/nodes/:id/execute, a NATS trigger, an inbound webhook,
// or an async Send Status).
type ExecuteRequest struct {
	// Instance is the instance the node acts on.
	Instance string `json:"instance"`
	// Input is the node's input, validated against its input schema.
	Input json.RawMessage `json:"input"`
	// Origin says who asked.
	Origin Origin `json:"origin"`
	// TraceParent continues the caller's trace.
	TraceParent string `json:"traceparent,omitempty"`
	// IdempotencyKey makes the execution run at most once per instance.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// MessageID pre-assigns the message id (async publishing).
	MessageID string `json:"messageId,omitempty"`
}

// DecodeExecuteRequest parses the body of POST /api/nodes/:id/execute
// against schemas/execute.input.json. Errors are *errcode.Error with
// [errcode.CodeInvalid] and the schema's literal message. TraceParent,
// IdempotencyKey and MessageID are not part of the body: front doors set them
// from headers.
func DecodeExecuteRequest(v *schemas.Validator, body []byte) (ExecuteRequest, error) {
	var req ExecuteRequest
	if err := v.Decode(schemas.ExecuteInput, body, &req); err != nil {
		return ExecuteRequest{}, err
	}
	return req, nil
}
