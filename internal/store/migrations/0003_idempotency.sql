-- Idempotency keys: one row per (instance, key). A row is claimed by the one
-- INSERT that wins (state 'pending', a short lease in expires_at), then either
-- completed with the first result (state 'done', kept 24 h) or deleted when
-- the first attempt failed, so a retry can run.
CREATE TABLE idempotency_keys (
	instance     TEXT NOT NULL,
	idem_key     TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	claim_id     TEXT NOT NULL,
	state        TEXT NOT NULL,
	result       TEXT NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	PRIMARY KEY (instance, idem_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
