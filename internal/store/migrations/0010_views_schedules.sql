-- Views and schedules (issue 18). Portable SQL: times are Unix milliseconds,
-- JSON is TEXT.

-- One row per (status, viewer): the first read or played receipt WhatsApp
-- sent for that viewer. Later receipts of the same viewer change nothing.
CREATE TABLE status_views (
	instance   TEXT NOT NULL,
	message_id TEXT NOT NULL,
	viewer     TEXT NOT NULL,
	kind       TEXT NOT NULL,
	viewed_at  BIGINT NOT NULL,
	PRIMARY KEY (instance, message_id, viewer)
);

-- A command to run later: a publication (publishAt) or the revoke that
-- expireAfter asks for. Claimed with a lease like the webhook outbox.
CREATE TABLE schedules (
	id              TEXT PRIMARY KEY,
	instance        TEXT NOT NULL,
	kind            TEXT NOT NULL,
	message_id      TEXT NOT NULL,
	args            TEXT NOT NULL,
	origin          TEXT NOT NULL DEFAULT '{}',
	traceparent     TEXT NOT NULL DEFAULT '',
	due_at          BIGINT NOT NULL,
	expire_after_ms BIGINT NOT NULL DEFAULT 0,
	state           TEXT NOT NULL,
	prepared_at     BIGINT NOT NULL DEFAULT 0,
	locked_until    BIGINT NOT NULL DEFAULT 0,
	lock_token      TEXT NOT NULL DEFAULT '',
	attempt         INTEGER NOT NULL DEFAULT 0,
	error_status    TEXT NOT NULL DEFAULT '',
	error_message   TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	finished_at     BIGINT NOT NULL DEFAULT 0,
	UNIQUE (instance, message_id, kind)
);
-- Open rows only: the scheduler's next-due and claim queries walk this
-- index, however long the history.
CREATE INDEX schedules_open ON schedules (due_at) WHERE state IN ('pending', 'running');
CREATE INDEX schedules_instance ON schedules (instance, due_at);
