-- The event log: every event the core emits, queryable by trace id.
CREATE TABLE events (
	id          TEXT PRIMARY KEY,
	seq         BIGINT NOT NULL,
	instance    TEXT NOT NULL,
	type        TEXT NOT NULL,
	trace_id    TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL DEFAULT '',
	platform    TEXT NOT NULL DEFAULT '',
	time        BIGINT NOT NULL,
	body        TEXT NOT NULL
);
CREATE INDEX events_instance_seq ON events (instance, seq);
CREATE INDEX events_trace ON events (trace_id);
