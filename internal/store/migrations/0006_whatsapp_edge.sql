-- Issue 12, the real WhatsApp edge.
--
-- A status whose send WhatsApp did not acknowledge in time is stored all the
-- same (it may well have reached its audience), as unconfirmed.
ALTER TABLE statuses ADD COLUMN confirmed BOOLEAN NOT NULL DEFAULT TRUE;

-- What the whatsmeow engine sent to status@broadcast, in protobuf's binary
-- form (base64), so that whatsmeow's retry-receipt callback can answer a
-- recipient's device that asks for the message again after a restart
-- (whatsmeow keeps only recent messages, in memory). Kept 48 h: a status
-- lives 24 h.
CREATE TABLE wa_sent_messages (
	instance      TEXT NOT NULL,
	message_id    TEXT NOT NULL,
	message_proto TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	PRIMARY KEY (instance, message_id)
);
CREATE INDEX wa_sent_messages_created ON wa_sent_messages (created_at);

-- The simulated audience of a sandbox instance: privacy mode and recipients
-- (a JSON array of JIDs).
CREATE TABLE sandbox_audiences (
	instance   TEXT PRIMARY KEY,
	mode       TEXT NOT NULL,
	recipients TEXT NOT NULL
);
