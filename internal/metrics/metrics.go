// Package metrics holds statusflow's Prometheus metrics and the small typed
// helpers every other package calls to feed them. [Default] is served on
// GET /metrics; tests that need a clean slate build their own with [New].
//
// Every helper is safe for concurrent use and cheap; none of them blocks.
// Label values are bounded sets (route patterns, event types, internal error
// statuses, node ids, connection states), never ids or raw paths.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "statusflow"

// Outcomes used as the `outcome` label.
const (
	// OutcomeOK: the step, request or delivery succeeded.
	OutcomeOK = "ok"
	// OutcomeError: it failed.
	OutcomeError = "error"
	// OutcomePublished: a publish command reached WhatsApp (or the sandbox).
	OutcomePublished = "published"
	// OutcomeFailed: a publish command failed; the `status` label says why.
	OutcomeFailed = "failed"
)

// ConnectionStates are the values of the instances gauge's `state` label
// (API.md §6), always exported, at zero when no instance is in that state.
var ConnectionStates = []string{"connected", "connecting", "disconnected", "loggedout"}

// Metrics is one set of statusflow metrics on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	publications    *prometheus.CounterVec
	deletions       *prometheus.CounterVec
	stageDuration   *prometheus.HistogramVec
	events          *prometheus.CounterVec
	redeliveries    *prometheus.CounterVec
	dlq             *prometheus.CounterVec
	webhookAttempts *prometheus.CounterVec
	webhookFailures *prometheus.CounterVec
	webhookDuration *prometheus.HistogramVec
	instances       *prometheus.GaugeVec
	views           *prometheus.CounterVec
	schedules       *prometheus.CounterVec
	scheduleLate    prometheus.Histogram
	clusterOwned    prometheus.Gauge
	clusterMoves    *prometheus.CounterVec
	clusterFwd      *prometheus.CounterVec
	stateReasons    *prometheus.CounterVec
	eventLogHeld    prometheus.Counter

	mu     sync.Mutex
	states map[string]string // instance → connection state
}

// New returns a fresh set of metrics registered on a new registry, with the
// Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), states: map[string]string{}}
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests by method, route pattern and status code."}, []string{"method", "route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "HTTP request latency by method and route pattern.", Buckets: prometheus.DefBuckets}, []string{"method", "route"})
	m.publications = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "publications_total",
		Help: "Publish commands by status type, outcome (published, failed) and internal error status (empty when published)."}, []string{"type", "outcome", "status"})
	m.deletions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "deletions_total",
		Help: "Delete commands by delete type (revoke, delete_for_me), outcome and internal error status."}, []string{"delete_type", "outcome", "status"})
	m.stageDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "pipeline_stage_duration_seconds",
		Help:    "Latency of each publication pipeline stage (validate, media.prepare with media.fetch and media.convert inside, upload, send, store, emit) by outcome.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"stage", "outcome"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_total",
		Help: "Events emitted by the core, by type."}, []string{"type"})
	m.redeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "trigger_redeliveries_total",
		Help: "NATS trigger messages delivered again (NumDelivered > 1), by node id."}, []string{"node"})
	m.dlq = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "trigger_dlq_total",
		Help: "NATS trigger messages sent to the dead-letter subject, by node id and reason (permanent, max_deliver, …)."}, []string{"node", "reason"})
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "webhook_delivery_attempts_total",
		Help: "Webhook delivery attempts by outcome (delivered, retryable, discarded)."}, []string{"outcome"})
	m.webhookFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "webhook_delivery_failures_total",
		Help: "Failed webhook delivery attempts by reason (an HTTP status class such as 5xx, timeout, network, …)."}, []string{"reason"})
	m.webhookDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "webhook_delivery_duration_seconds",
		Help: "Webhook delivery attempt latency by outcome.", Buckets: prometheus.DefBuckets}, []string{"outcome"})
	m.instances = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "instances",
		Help: "Instances by connection state (connected, connecting, disconnected, loggedout)."}, []string{"state"})
	m.stateReasons = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "instance_state_reasons_total",
		Help: "Instance state changes with a reason that asks for action (client_outdated, syncing_contacts), by reason."}, []string{"reason"})
	m.views = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "status_views_total",
		Help: "Status view receipts by kind (read, played) and outcome (recorded; duplicate: the viewer had one; unknown: no status of ours has that id)."}, []string{"kind", "outcome"})
	m.schedules = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "schedules_total",
		Help: "Scheduled commands by kind (status.publish, status.delete) and outcome (scheduled, done, failed, cancelled, missed)."}, []string{"kind", "outcome"})
	m.scheduleLate = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "schedule_lateness_seconds",
		Help:    "How long after its due time a scheduled command started.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60}})
	m.clusterOwned = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "cluster_instances_owned",
		Help: "Instances whose lease this replica holds (clustering on)."})
	m.clusterMoves = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "cluster_ownership_changes_total",
		Help: "Sessions this replica opened after taking an unowned instance (taken) or closed after losing its lease (lost)."}, []string{"change"})
	m.clusterFwd = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "cluster_forwarded_total",
		Help: "Requests this replica forwarded to the owner of their instance, by kind (command: publish, delete, schedule cancel; http: a route that needs the live session, such as connect, logout or audience) and outcome: ok (the owner served it), error (the owner answered an error), and the failover gap's no_owner (the lease is this replica's previous run's), unreachable (no owner listening, NATS error) and timeout."}, []string{"kind", "outcome"})
	m.eventLogHeld = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "event_log_held_back_total",
		Help: "Event log reads (PostgreSQL) that gave up waiting for events committed before they began: a transaction left open with an id on the PostgreSQL server holds the log's horizon back (see pg_stat_activity: idle in transaction)."})
	for _, c := range []prometheus.Collector{m.eventLogHeld, m.clusterFwd, m.httpRequests, m.httpDuration, m.publications, m.deletions, m.stageDuration, m.events,
		m.redeliveries, m.dlq, m.webhookAttempts, m.webhookFailures, m.webhookDuration, m.instances, m.views, m.schedules, m.scheduleLate,
		m.clusterOwned, m.clusterMoves, m.stateReasons} {
		f(c)
	}
	for _, s := range ConnectionStates {
		m.instances.WithLabelValues(s).Set(0)
	}
	return m
}

// Default is the process's metrics, served on GET /metrics. The package-level
// helpers feed it.
var Default = New()

// Handler serves m in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// HTTPRequest counts one HTTP request. route is the route pattern
// (/api/message/status/:instance), never the raw path.
func (m *Metrics) HTTPRequest(method, route string, code int, d time.Duration) {
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// Publication counts one publish command by status type (text, image, video,
// audio). errStatus is the internal error status (media_download_failed, …)
// of a failure, empty for a success; the outcome label follows from it.
func (m *Metrics) Publication(statusType, errStatus string) {
	outcome := OutcomePublished
	if errStatus != "" {
		outcome = OutcomeFailed
	}
	m.publications.WithLabelValues(statusType, outcome, errStatus).Inc()
}

// Deletion counts one delete command; errStatus as in [Metrics.Publication].
func (m *Metrics) Deletion(deleteType, errStatus string) {
	outcome := OutcomeOK
	if errStatus != "" {
		outcome = OutcomeError
	}
	m.deletions.WithLabelValues(deleteType, outcome, errStatus).Inc()
}

// Stage observes one pipeline stage's latency; failed says whether it
// returned an error.
func (m *Metrics) Stage(stage string, failed bool, d time.Duration) {
	outcome := OutcomeOK
	if failed {
		outcome = OutcomeError
	}
	m.stageDuration.WithLabelValues(stage, outcome).Observe(d.Seconds())
}

// Event counts one emitted event by type.
func (m *Metrics) Event(eventType string) { m.events.WithLabelValues(eventType).Inc() }

// TriggerRedelivered counts a trigger message seen again (JetStream
// NumDelivered > 1) for a node id.
func (m *Metrics) TriggerRedelivered(node string) { m.redeliveries.WithLabelValues(node).Inc() }

// TriggerDeadLettered counts a trigger sent to statusflow.dlq.<node>.<instance>;
// reason is a short bounded word (permanent, invalid, max_deliver).
func (m *Metrics) TriggerDeadLettered(node, reason string) { m.dlq.WithLabelValues(node, reason).Inc() }

// WebhookAttempt counts one webhook delivery attempt and its latency.
// outcome is the outbox state it led to (delivered, retryable, discarded).
func (m *Metrics) WebhookAttempt(outcome string, d time.Duration) {
	m.webhookAttempts.WithLabelValues(outcome).Inc()
	m.webhookDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// WebhookFailure counts a failed delivery attempt by reason: the receiver's
// status class ("4xx", "5xx"), "timeout" or "network".
func (m *Metrics) WebhookFailure(reason string) { m.webhookFailures.WithLabelValues(reason).Inc() }

// InstanceState records an instance's connection state (from instance.state
// events) and updates the instances-by-state gauge.
func (m *Metrics) InstanceState(instance, state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states[instance] = state
	m.recount()
}

// StateReason counts a state change whose reason asks for action.
func (m *Metrics) StateReason(reason string) { m.stateReasons.WithLabelValues(reason).Inc() }

// InstanceRemoved forgets a deleted instance.
func (m *Metrics) InstanceRemoved(instance string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.states, instance)
	m.recount()
}

func (m *Metrics) recount() {
	counts := map[string]int{}
	for _, s := range ConnectionStates {
		counts[s] = 0
	}
	for _, s := range m.states {
		counts[s]++
	}
	m.instances.Reset()
	for s, n := range counts {
		m.instances.WithLabelValues(s).Set(float64(n))
	}
}

// Package-level helpers feed [Default].

// HTTPRequest calls [Metrics.HTTPRequest] on [Default].
func HTTPRequest(method, route string, code int, d time.Duration) {
	Default.HTTPRequest(method, route, code, d)
}

// Publication calls [Metrics.Publication] on [Default].
func Publication(statusType, errStatus string) { Default.Publication(statusType, errStatus) }

// Deletion calls [Metrics.Deletion] on [Default].
func Deletion(deleteType, errStatus string) { Default.Deletion(deleteType, errStatus) }

// StageTimer starts timing a pipeline stage on [Default]; call the returned
// func once with the stage's error. Pair it with tracing.Start for the span:
//
//	ctx, end := tracing.Start(ctx, "media.convert")
//	done := metrics.StageTimer("media.convert")
//	err := convert(ctx)
//	end(err)
//	done(err)
func StageTimer(stage string) func(err error) {
	start := time.Now()
	return func(err error) { Default.Stage(stage, err != nil, time.Since(start)) }
}

// Event calls [Metrics.Event] on [Default].
func Event(eventType string) { Default.Event(eventType) }

// TriggerRedelivered calls [Metrics.TriggerRedelivered] on [Default].
func TriggerRedelivered(node string) { Default.TriggerRedelivered(node) }

// TriggerDeadLettered calls [Metrics.TriggerDeadLettered] on [Default].
func TriggerDeadLettered(node, reason string) { Default.TriggerDeadLettered(node, reason) }

// WebhookAttempt calls [Metrics.WebhookAttempt] on [Default].
func WebhookAttempt(outcome string, d time.Duration) { Default.WebhookAttempt(outcome, d) }

// WebhookFailure calls [Metrics.WebhookFailure] on [Default].
func WebhookFailure(reason string) { Default.WebhookFailure(reason) }

// InstanceState calls [Metrics.InstanceState] on [Default].
func InstanceState(instance, state string) { Default.InstanceState(instance, state) }

// InstanceRemoved calls [Metrics.InstanceRemoved] on [Default].
func InstanceRemoved(instance string) { Default.InstanceRemoved(instance) }

// View counts a status view receipt by kind and outcome (recorded,
// duplicate, unknown).
func (m *Metrics) View(kind, outcome string) { m.views.WithLabelValues(kind, outcome).Inc() }

// Schedule counts a scheduled command's step by kind and outcome.
func (m *Metrics) Schedule(kind, outcome string) { m.schedules.WithLabelValues(kind, outcome).Inc() }

// ScheduleLateness records how late a scheduled command started.
func (m *Metrics) ScheduleLateness(d time.Duration) { m.scheduleLate.Observe(d.Seconds()) }

// View calls [Metrics.View] on [Default].
func View(kind, outcome string) { Default.View(kind, outcome) }

// Schedule calls [Metrics.Schedule] on [Default].
func Schedule(kind, outcome string) { Default.Schedule(kind, outcome) }

// ScheduleLateness calls [Metrics.ScheduleLateness] on [Default].
func ScheduleLateness(d time.Duration) { Default.ScheduleLateness(d) }

// ClusterOwnership records, after a reconcile, how many instances this
// replica owns and how many it took and lost.
func (m *Metrics) ClusterOwnership(owned, taken, lost int) {
	m.clusterOwned.Set(float64(owned))
	m.clusterMoves.WithLabelValues("taken").Add(float64(taken))
	m.clusterMoves.WithLabelValues("lost").Add(float64(lost))
}

// ClusterForwarded counts a request (kind "command" or "http") forwarded to
// its instance's owner, by outcome.
func (m *Metrics) ClusterForwarded(kind, outcome string) {
	m.clusterFwd.WithLabelValues(kind, outcome).Inc()
}

// ClusterForwarded calls [Metrics.ClusterForwarded] on [Default].
func ClusterForwarded(kind, outcome string) { Default.ClusterForwarded(kind, outcome) }

// ClusterOwnership calls [Metrics.ClusterOwnership] on [Default].
func ClusterOwnership(owned, taken, lost int) { Default.ClusterOwnership(owned, taken, lost) }

// EventLogHeldBack counts an event log read that gave up waiting for its
// horizon (see store.EventList).
func (m *Metrics) EventLogHeldBack() { m.eventLogHeld.Inc() }

// EventLogHeldBack calls [Metrics.EventLogHeldBack] on [Default].
func EventLogHeldBack() { Default.EventLogHeldBack() }

// StateReason counts a state change with an actionable reason on [Default].
func StateReason(reason string) { Default.StateReason(reason) }
