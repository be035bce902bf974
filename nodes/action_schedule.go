package nodes

import (
	"context"
	"encoding/json"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/schemas"
)

// Schedule node ids. Workflows store them: never rename.
const (
	CancelScheduleID = status.KindCancel
	ListSchedulesID  = "schedule.list"
)

// CancelScheduleSpec describes the action that cancels a pending schedule
// (DELETE /api/schedule/:instance/:id).
func CancelScheduleSpec() Descriptor {
	return Descriptor{
		ID:          CancelScheduleID,
		Version:     1,
		Kind:        KindAction,
		Title:       "Cancel a scheduled status",
		Description: "Cancel a publication scheduled with publishAt, or the revoke an expireAfter scheduled, before it runs. Emits status.cancelled on the schedule's trace.",
		Noun:        "Schedule",
		Input:       schemas.ScheduleCancelInput,
		Output:      schemas.ScheduleCancelOutput,
		Samples: []Sample{{
			Title:  "Cancel a schedule",
			Input:  json.RawMessage(`{"scheduleId":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}`),
			Output: json.RawMessage(sampleOf(schemas.ScheduleCancelOutput)),
		}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}

// ListSchedulesSpec describes the action that lists an instance's schedules
// (GET /api/schedule/:instance).
func ListSchedulesSpec() Descriptor {
	return Descriptor{
		ID:          ListSchedulesID,
		Version:     1,
		Kind:        KindAction,
		Title:       "List scheduled statuses",
		Description: "The instance's scheduled publications and revokes in due order; pending and running unless states are given.",
		Noun:        "Schedule",
		Input:       schemas.ScheduleListInput,
		Output:      schemas.ScheduleListOutput,
		Samples: []Sample{{
			Title:  "Pending schedules",
			Input:  json.RawMessage(`{}`),
			Output: json.RawMessage(sampleOf(schemas.ScheduleListOutput)),
		}},
		Credentials: []Credential{{Name: CredentialName, Required: true, Schema: schemas.Credential}},
	}
}

// CancelOutput is the output of the schedule.cancel action.
type CancelOutput struct {
	ScheduleID string `json:"scheduleId"`
	MessageID  string `json:"messageId"`
	TraceID    string `json:"traceId"`
}

func cancelSchedule(svc *status.Service) Handler {
	return func(ctx context.Context, call Call) (any, error) {
		res, err := runCommand[status.CancelArgs](ctx, svc, call)
		if err != nil {
			return nil, err
		}
		return &CancelOutput{ScheduleID: res.ScheduleID, MessageID: res.MessageID, TraceID: res.TraceID}, nil
	}
}

func listSchedules(svc *status.Service) Handler {
	return func(ctx context.Context, call Call) (any, error) {
		if svc == nil {
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", errNoService)
		}
		var in struct {
			States []string `json:"states"`
			Limit  int      `json:"limit"`
		}
		if err := decodeInput(call.Request.Input, &in); err != nil {
			return nil, err
		}
		list, err := svc.Schedules(ctx, &store.ScheduleListParams{Instance: call.Command.Instance, States: in.States, Limit: in.Limit})
		if err != nil {
			return nil, err
		}
		return map[string]any{"schedules": list}, nil
	}
}
