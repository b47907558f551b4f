-- Notifications sent (functions/notify-email and functions/notify-push):
-- one row per channel, event and recipient, so a redelivered event (same
-- source + id) sends nothing twice. A row is claimed ('sending') before
-- the message goes out and marked 'sent' after; a failed send releases the
-- claim so that the Trigger's retry tries again. Rows hold ids only, never
-- an address or a message body.
CREATE TABLE notifications_sent (
	channel      text        NOT NULL CHECK (channel IN ('email', 'push')),
	event_source text        NOT NULL CHECK (event_source <> ''),
	event_id     text        NOT NULL CHECK (event_id <> ''),
	-- The recipient: a user id (email) or a push subscription id (push).
	recipient    text        NOT NULL CHECK (recipient <> ''),
	state        text        NOT NULL DEFAULT 'sending' CHECK (state IN ('sending', 'sent')),
	claimed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
	sent_at      timestamptz,
	PRIMARY KEY (channel, event_source, event_id, recipient)
);

CREATE INDEX notifications_sent_claimed ON notifications_sent (claimed_at);
