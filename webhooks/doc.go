// Package webhooks sends statusflow's events to webhooks and takes signed
// requests in.
//
// # Outbound
//
// Each instance has webhooks, upserted by label: a URL, an event filter, an
// optional static Authorization header value and a signing secret
// ("whsec_…"). When the core records an event, [Service.TxHook] writes one
// outbox row (a delivery) per matching enabled webhook in the same database
// transaction as the event, so an event can never exist without its
// deliveries, nor the reverse. The [Worker] claims due deliveries with a
// lease, sends the event's CloudEvents JSON signed per Standard Webhooks
// (webhook-id, webhook-timestamp, webhook-signature) and records every
// attempt. A delivery's webhook-id is its row id: the same for every retry
// and replay, different for each (event, webhook) pair, so receivers can
// deduplicate. A worker that dies mid-delivery (kill -9) leaves its rows in
// [StateDelivering]; when their lease runs out they are due again, so
// delivery is at least once and nothing is lost.
//
// Rotating a secret keeps the previous one signing for a grace period:
// deliveries then carry two space-separated "v1,…" signatures and receivers
// holding either secret verify them.
//
// # Inbound
//
// An inbound hook is an URL (POST /hooks/in/:hookId) and a secret. An
// outside system POSTs a node input signed per Standard Webhooks; the
// signature and a ±5 minute timestamp tolerance are checked, a webhook-id
// already accepted is refused, and the input runs through the node catalog
// with origin platform "webhook" and the hook's id in origin.extra.hookId.
package webhooks
