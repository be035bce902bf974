package status

import (
	"context"

	"go.opentelemetry.io/otel/attribute"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/tracing"
)

// Pipeline stages: each is an OpenTelemetry span named "status.<stage>" and
// a series of statusflow_pipeline_stage_duration_seconds.
const (
	stageValidate     = "validate"
	stageAudience     = "audience"
	stageMediaPrepare = "media.prepare"
	stageUpload       = "upload"
	stageSend         = "send"
	stageStore        = "store"
	stageEmit         = "emit"
)

// step starts one pipeline stage: a span, child of the trace in ctx, and a
// timer for the stage latency histogram. Call end exactly once with the
// stage's error.
func step(ctx context.Context, stage string, attrs ...attribute.KeyValue) (_ context.Context, end func(error)) {
	done := metrics.StageTimer(stage)
	if !tracing.Recording() {
		return ctx, done // no span to record: only the latency
	}
	ctx, endSpan := tracing.Start(ctx, "status."+stage, attrs...)
	return ctx, func(err error) {
		endSpan(err)
		done(err)
	}
}

// errStatus is the internal status of a failed command for metrics ("" on success).
func errStatus(err error) string {
	if err == nil {
		return ""
	}
	return string(errcode.AsError(err).Code)
}

// publishObserved is publish inside a "status.publish" span, counted in
// statusflow_publications_total.
func (s *Service) publishObserved(ctx context.Context, cmd Command, a PublishArgs, tc tracing.Context) (*Result, error) {
	ctx, end := tracing.Start(ctx, "status.publish", attribute.String("statusflow.instance", cmd.Instance),
		attribute.String("statusflow.type", a.Type), attribute.String("statusflow.origin.platform", cmd.Origin.Platform))
	res, err := s.publish(ctx, cmd, a, tc)
	end(err)
	if res == nil || !res.Scheduled { // a scheduled one counts when it runs
		metrics.Publication(a.Type, errStatus(err))
	}
	return res, err
}

// deleteObserved is delete inside a "status.delete" span, counted in
// statusflow_deletions_total.
func (s *Service) deleteObserved(ctx context.Context, cmd Command, a DeleteArgs, tc tracing.Context) (*Result, error) {
	ctx, end := tracing.Start(ctx, "status.delete", attribute.String("statusflow.instance", cmd.Instance),
		attribute.String("statusflow.message_id", a.MessageID))
	res, err := s.delete(ctx, cmd, a, tc)
	end(err)
	deleteType := "delete_for_me"
	if a.DeleteForEveryone {
		deleteType = "revoke"
	}
	metrics.Deletion(deleteType, errStatus(err))
	return res, err
}
