-- Webhooks (issue 6): outbound webhook configuration, the delivery outbox
-- with its attempts, inbound hooks and the inbound replay guard.
-- Portable SQL: times are Unix milliseconds, JSON is TEXT.
CREATE TABLE webhooks (
	id                  TEXT PRIMARY KEY,
	instance            TEXT NOT NULL,
	label               TEXT NOT NULL,
	url                 TEXT NOT NULL,
	events              TEXT NOT NULL DEFAULT '[]',
	authorization_value TEXT NOT NULL DEFAULT '',
	enabled             BOOLEAN NOT NULL DEFAULT TRUE,
	disabled_reason     TEXT NOT NULL DEFAULT '',
	secret              TEXT NOT NULL,
	previous_secret     TEXT NOT NULL DEFAULT '',
	previous_until      BIGINT NOT NULL DEFAULT 0,
	created_at          BIGINT NOT NULL,
	updated_at          BIGINT NOT NULL,
	UNIQUE (instance, label)
);

-- One row per (webhook, event): the outbox. The id is the webhook-id header.
CREATE TABLE webhook_deliveries (
	id           TEXT PRIMARY KEY,
	webhook_id   TEXT NOT NULL,
	instance     TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	event_type   TEXT NOT NULL,
	event_time   BIGINT NOT NULL,
	body         TEXT NOT NULL,
	state        TEXT NOT NULL,
	attempt      INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	scheduled_at BIGINT NOT NULL,
	locked_until BIGINT NOT NULL DEFAULT 0,
	lock_token   TEXT NOT NULL DEFAULT '',
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	finalized_at BIGINT NOT NULL DEFAULT 0,
	UNIQUE (webhook_id, event_id)
);
-- Due rows only (a partial index, same syntax on both databases): claiming
-- walks it in time order and stops at its LIMIT, however long the history.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (scheduled_at) WHERE state IN ('pending', 'retryable');
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (locked_until) WHERE state = 'delivering';
CREATE INDEX webhook_deliveries_lock ON webhook_deliveries (lock_token);
CREATE INDEX webhook_deliveries_instance ON webhook_deliveries (instance, created_at);

CREATE TABLE webhook_attempts (
	delivery_id TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	at          BIGINT NOT NULL,
	status_code INTEGER NOT NULL DEFAULT 0,
	latency_ms  BIGINT NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE inbound_hooks (
	id              TEXT PRIMARY KEY,
	instance        TEXT NOT NULL,
	node            TEXT NOT NULL,
	description     TEXT NOT NULL DEFAULT '',
	secret          TEXT NOT NULL,
	previous_secret TEXT NOT NULL DEFAULT '',
	previous_until  BIGINT NOT NULL DEFAULT 0,
	created_at      BIGINT NOT NULL
);
CREATE INDEX inbound_hooks_instance ON inbound_hooks (instance);

-- webhook-id values already accepted by an inbound hook, kept past the
-- timestamp tolerance so a captured request cannot be replayed.
CREATE TABLE inbound_seen (
	hook_id    TEXT NOT NULL,
	message_id TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (hook_id, message_id)
);
CREATE INDEX inbound_seen_expires ON inbound_seen (expires_at);
