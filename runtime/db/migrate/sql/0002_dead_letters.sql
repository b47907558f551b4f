-- Dead letters (functions/dead-letters): events a Trigger could not deliver
-- after its retries, kept for inspection and replay. Events carry ids and
-- tokens, never plaintext sensitive data, so keeping them is safe.
CREATE TABLE dead_letters (
	source      text        NOT NULL CHECK (source <> ''),
	id          text        NOT NULL CHECK (id <> ''),
	type        text        NOT NULL CHECK (type <> ''),
	-- Where delivery failed and with what HTTP status (Knative's
	-- knativeerrordest and knativeerrorcode extensions); NULL when unknown.
	destination text,
	status      integer,
	-- The event in CloudEvents structured-mode JSON, as received.
	event       bytea       NOT NULL,
	received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	-- A redelivery of the same dead letter is the same row.
	PRIMARY KEY (source, id)
);

CREATE INDEX dead_letters_received ON dead_letters (received_at);
