-- Portable SQL: it runs unchanged on SQLite and PostgreSQL. Times are Unix
-- milliseconds (BIGINT), JSON is TEXT, binary values are hex or base64 TEXT.
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE instances (
	name       TEXT PRIMARY KEY,
	engine     TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	device_jid TEXT NOT NULL DEFAULT '',
	state      TEXT NOT NULL DEFAULT 'disconnected',
	created_at BIGINT NOT NULL
);

CREATE TABLE statuses (
	instance    TEXT NOT NULL,
	message_id  TEXT NOT NULL,
	type        TEXT NOT NULL,
	source      TEXT NOT NULL DEFAULT '',
	trace_id    TEXT NOT NULL DEFAULT '',
	origin      TEXT NOT NULL DEFAULT '{}',
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT,
	PRIMARY KEY (instance, message_id)
);
CREATE INDEX statuses_trace ON statuses (trace_id);

CREATE TABLE sandbox_statuses (
	instance       TEXT NOT NULL,
	message_id     TEXT NOT NULL,
	type           TEXT NOT NULL,
	message        TEXT NOT NULL,
	media_mimetype TEXT NOT NULL DEFAULT '',
	media_bytes    BIGINT NOT NULL DEFAULT 0,
	media_sha256   TEXT NOT NULL DEFAULT '',
	revoked        BOOLEAN NOT NULL DEFAULT FALSE,
	created_at     BIGINT NOT NULL,
	PRIMARY KEY (instance, message_id)
);
CREATE INDEX sandbox_statuses_created ON sandbox_statuses (instance, created_at);
