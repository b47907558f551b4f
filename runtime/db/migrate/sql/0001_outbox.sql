-- The transactional outbox (runtime/outbox): events written in the same
-- transaction as the state change they announce, sent to the broker after
-- commit, and resent by a sweep until the broker accepts them.
CREATE TABLE outbox (
	-- CloudEvents source and id: the event's identity, which consumers use
	-- to drop duplicates. A resend is the same event, never a new one.
	source          text        NOT NULL CHECK (source <> ''),
	id              text        NOT NULL CHECK (id <> ''),
	type            text        NOT NULL CHECK (type <> ''),
	-- The event in CloudEvents structured-mode JSON, kept as bytes so every
	-- send is byte-for-byte the event that was committed.
	event           bytea       NOT NULL,
	created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
	-- NULL until the broker accepted the event (a 2xx).
	sent_at         timestamptz,
	-- Failed sends so far; next_attempt_at backs off exponentially with it.
	attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	-- Status code or short transport error of the last failure; never any
	-- event data.
	last_error      text,
	PRIMARY KEY (source, id)
);

-- The sweep's queue: only unsent rows, in the order they fall due.
CREATE INDEX outbox_unsent ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Retention: sent rows are deleted after a while.
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
