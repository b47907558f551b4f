-- The tamper-evident audit log (domain/audit, functions/audit-record and
-- functions/audit-query). One row per Skyflow event, never a sensitive
-- value: context attributes, a few extensions, and for com.skyflow.audit.*
-- events an allow-list of data fields.
--
-- Two defences against tampering:
--   * a trigger refuses UPDATE, DELETE and TRUNCATE (append-only); someone
--     with superuser rights can still disable it, so
--   * every row carries hash = SHA-256(prev_hash || canonical JSON of entry),
--     chaining it to the row before; `skyflow audit verify` recomputes the
--     chain and names the first row that does not match.
CREATE TABLE audit_log (
	seq          bigserial   PRIMARY KEY,
	-- The event's identity: a redelivery is the same event and adds no row.
	event_source text        NOT NULL CHECK (event_source <> ''),
	event_id     text        NOT NULL CHECK (event_id <> ''),
	event_type   text        NOT NULL CHECK (event_type <> ''),
	-- Copies of hashed fields of entry, for the queries' filters; verify
	-- checks that they agree with entry.
	subject      text,
	vault_id     text,
	principal    text,
	resource     text,
	action       text,
	-- The event's time (its CloudEvents time attribute, or the time it was
	-- recorded when the event has none).
	occurred_at  timestamptz NOT NULL,
	recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	-- What is hashed (audit.Entry); its canonical form is documented there.
	entry        jsonb       NOT NULL,
	-- NULL for the first entry of the chain.
	prev_hash    bytea       CHECK (prev_hash IS NULL OR length(prev_hash) = 32),
	hash         bytea       NOT NULL CHECK (length(hash) = 32),
	UNIQUE (event_source, event_id)
);

-- The query filters, each paged newest first by seq.
CREATE INDEX audit_log_vault_id    ON audit_log (vault_id, seq);
CREATE INDEX audit_log_principal   ON audit_log (principal, seq);
CREATE INDEX audit_log_resource    ON audit_log (resource, seq);
CREATE INDEX audit_log_action      ON audit_log (action, seq);
CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only
	BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
	BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The chain's head: one row, locked (SELECT … FOR UPDATE) by every append,
-- so appends are serialised and the chain is linear. It also records the
-- last entry, so verify notices entries removed from the end.
CREATE TABLE audit_chain_head (
	only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	seq      bigint  NOT NULL DEFAULT 0,
	hash     bytea   CHECK (hash IS NULL OR length(hash) = 32)
);
INSERT INTO audit_chain_head DEFAULT VALUES;

CREATE TRIGGER audit_chain_head_kept
	BEFORE DELETE ON audit_chain_head
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
