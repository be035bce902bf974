package webhooks_test

import (
	"slices"
	"testing"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
	"github.com/statusflow/statusflow/webhooks"
)

// TestWebhookConfigSchema_EventsEnum keeps the schema's event filter values
// in step with the core's event types.
func TestWebhookConfigSchema_EventsEnum(t *testing.T) {
	t.Parallel()
	doc := schemas.Default().Doc(schemas.WebhookConfigInput)
	items := doc["properties"].(map[string]any)["events"].(map[string]any)["items"].(map[string]any)
	var got []string
	for _, v := range items["enum"].([]any) {
		got = append(got, v.(string))
	}
	want := append([]string{webhooks.AllEvents}, status.EventTypes()...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("schema enum %v, want %v", got, want)
	}
}
