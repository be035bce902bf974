package bus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TriggerDurable is the durable name of the trigger consumer on the triggers
// stream. It is part of the contract: every statusflow process sharing a
// prefix shares this durable (and so splits the work). NOTE: renaming it
// creates a new consumer; on a work-queue stream the old one must be deleted
// first, and messages it had delivered but not acked are redelivered.
const TriggerDurable = "statusflow-trigger"

// Subjects and stream names derived from a prefix. The prefix is one subject
// token ([Config.Prefix]); streams are named after it in upper case so two
// prefixes can share a server.
type Subjects struct {
	Prefix string
}

// Trigger is <prefix>.trigger.<nodeId>.<instance>.
func (s Subjects) Trigger(nodeID, instance string) string {
	return s.Prefix + ".trigger." + nodeID + "." + instance
}

// Request is <prefix>.request.<nodeId>.<instance>: the request-reply door.
func (s Subjects) Request(nodeID, instance string) string {
	return s.Prefix + ".request." + nodeID + "." + instance
}

// DLQ is <prefix>.dlq.<nodeId>.<instance>.
func (s Subjects) DLQ(nodeID, instance string) string {
	return s.Prefix + ".dlq." + nodeID + "." + instance
}

// Event is <prefix>.events.<instance>.<type>.
func (s Subjects) Event(instance, eventType string) string {
	return s.Prefix + ".events." + instance + "." + eventType
}

// ParseTrigger splits a trigger, request or DLQ subject into node id and
// instance. The node id may hold dots (status.publish); the instance is the
// last token. kind is "trigger", "request" or "dlq".
func (s Subjects) ParseTrigger(kind, subject string) (nodeID, instance string, ok bool) {
	rest, found := strings.CutPrefix(subject, s.Prefix+"."+kind+".")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

func (s Subjects) streamName(suffix string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s.Prefix) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "_" + suffix
}

// TriggersStream, EventsStream and DLQStream are the stream names, e.g.
// STATUSFLOW_TRIGGERS.
func (s Subjects) TriggersStream() string { return s.streamName("TRIGGERS") }
func (s Subjects) EventsStream() string   { return s.streamName("EVENTS") }
func (s Subjects) DLQStream() string      { return s.streamName("DLQ") }

// StreamConfigs declares every stream, in one place:
//
//   - <PREFIX>_TRIGGERS on <prefix>.trigger.>: work-queue retention (a
//     trigger is gone once acked or terminated), file storage, a
//     deduplication window of cfg.DedupWindow on Nats-Msg-Id.
//   - <PREFIX>_EVENTS on <prefix>.events.>: limits retention, kept for
//     cfg.EventsMaxAge; events carry no Nats-Msg-Id (see Bus.PublishEvent).
//   - <PREFIX>_DLQ on <prefix>.dlq.>: limits retention, kept for cfg.DLQMaxAge.
func StreamConfigs(cfg Config) []jetstream.StreamConfig {
	s := Subjects{Prefix: cfg.Prefix}
	return []jetstream.StreamConfig{
		{
			Name:        s.TriggersStream(),
			Description: "statusflow triggers: node executions to run (API.md §8)",
			Subjects:    []string{cfg.Prefix + ".trigger.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    max(1, cfg.Replicas),
			Duplicates:  cfg.DedupWindow,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        s.EventsStream(),
			Description: "statusflow events: CloudEvents 1.0 JSON",
			Subjects:    []string{cfg.Prefix + ".events.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    max(1, cfg.Replicas),
			MaxAge:      cfg.EventsMaxAge,
			Duplicates:  min(2*time.Minute, cfg.EventsMaxAge),
		},
		{
			Name:        s.DLQStream(),
			Description: "statusflow dead triggers, with the reason in headers",
			Subjects:    []string{cfg.Prefix + ".dlq.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    max(1, cfg.Replicas),
			MaxAge:      cfg.DLQMaxAge,
			Duplicates:  min(2*time.Minute, cfg.DLQMaxAge),
		},
	}
}

// TriggerConsumerConfig declares the durable trigger consumer. The server's
// MaxDeliver is two above cfg.MaxDeliver: the consumer moves a trigger to the
// DLQ itself on its cfg.MaxDeliver-th failed delivery, and the slack lets a
// process that crashed during that delivery still see it again.
func TriggerConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       TriggerDurable,
		Description:   "statusflow trigger consumer (runs node executions)",
		FilterSubject: cfg.Prefix + ".trigger.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver + 2,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000,
	}
}

// declare creates or updates every stream and the trigger consumer.
func declare(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, error) {
	for _, sc := range StreamConfigs(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("nats: declare stream %s: %w", sc.Name, err)
		}
	}
	s := Subjects{Prefix: cfg.Prefix}
	c, err := js.CreateOrUpdateConsumer(ctx, s.TriggersStream(), TriggerConsumerConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("nats: declare consumer %s: %w", TriggerDurable, err)
	}
	return c, nil
}
