package status

import (
	"context"
	"errors"

	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// viewStore keeps who saw which status.
type viewStore interface {
	ViewInsert(ctx context.Context, v *store.View) (bool, error)
	ViewCount(ctx context.Context, instance, messageID string) (int64, error)
}

// RecordReceipt records a viewer's receipt for each status it names and
// emits status.viewed for each first view, on the status's own trace (so the
// status's story in the event log lists its views). Receipts for ids that
// are no status of this instance (sent before statusflow, or by the phone
// itself) and repeated receipts of one viewer only count in /metrics.
func (s *Service) RecordReceipt(ctx context.Context, r whatsapp.Receipt) {
	vs, ok := s.store.(viewStore)
	if !ok {
		return
	}
	for _, id := range r.MessageIDs {
		st, err := s.store.StatusGet(ctx, r.Instance, id)
		if errors.Is(err, store.ErrNotFound) {
			metrics.View(r.Kind, "unknown")
			continue
		}
		if err != nil {
			s.log.Error("status view: look up status", "instance", r.Instance, "messageId", id, "err", err)
			continue
		}
		inserted, err := vs.ViewInsert(ctx, &store.View{Instance: r.Instance, MessageID: id, Viewer: r.Viewer, Kind: r.Kind, ViewedAt: r.At})
		if err != nil {
			s.log.Error("status view: record", "instance", r.Instance, "messageId", id, "err", err)
			continue
		}
		if !inserted {
			metrics.View(r.Kind, "duplicate")
			continue
		}
		metrics.View(r.Kind, "recorded")
		n, err := vs.ViewCount(ctx, r.Instance, id)
		if err != nil {
			s.log.Warn("status view: count", "instance", r.Instance, "messageId", id, "err", err)
		}
		tc := tracing.New()
		if st.TraceID != "" {
			tc = tracing.Context{TraceID: st.TraceID, Sampled: true}.Child()
		}
		s.emit(ctx, Event{Type: EventStatusViewed, Instance: r.Instance, TraceParent: tc.String(), Origin: originOf(st),
			Data: ViewedData{MessageID: id, Viewer: r.Viewer, Kind: r.Kind, Timestamp: r.At, Views: n, TraceID: tc.TraceID}})
	}
}
