package nodes

import (
	"encoding/json"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/schemas"
)

// Default builds the standard catalog: the status.publish and status.delete
// actions, run by svc, and the status.published, status.failed and
// instance.state triggers. v nil means [schemas.Default]. svc may be nil for
// a catalog that is only described (renderers, docs); executing then fails
// with an internal error.
func Default(svc *status.Service, v *schemas.Validator) *Catalog {
	c := NewCatalog(v)
	c.MustAdd(PublishStatusSpec(), publishStatus(svc))
	c.MustAdd(DeleteStatusSpec(), deleteStatus(svc))
	c.MustAdd(StatusPublishedSpec(), nil)
	c.MustAdd(StatusFailedSpec(), nil)
	c.MustAdd(InstanceStateSpec(), nil)
	c.MustAdd(StatusViewedSpec(), nil)
	c.MustAdd(CancelScheduleSpec(), cancelSchedule(svc))
	c.MustAdd(ListSchedulesSpec(), listSchedules(svc))
	return c
}

// sampleOf returns the first example of an embedded schema, or "{}".
func sampleOf(name string) string {
	exs, _ := schemas.Default().Doc(name)["examples"].([]any)
	if len(exs) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(exs[0])
	return string(b)
}
