-- Webhooks (shared/webhooks; the webhooks-* functions manage endpoints,
-- notify-webhook delivers). An endpoint is a URL that receives the
-- com.skyflow.* events matching its type patterns, signed per Standard
-- Webhooks with its secret. The secret is stored only wrapped by the
-- key-encryption key; deliveries hold identifiers and the event as sent,
-- never a response body.
CREATE TABLE webhook_endpoints (
	id              uuid        PRIMARY KEY,
	url             text        NOT NULL CHECK (url <> '' AND length(url) <= 2048),
	description     text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
	-- Canonical patterns: exact types, or prefixes ending in '*'.
	event_types     text[]      NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50),
	-- Only events whose vaultid extension is this vault (32 hex digits), when set.
	vault_id        text        CHECK (vault_id ~ '^[0-9a-f]{32}$'),
	-- The principal that created it ("user:<id>", "sa:<client id>").
	owner           text        NOT NULL CHECK (owner <> ''),
	-- The signing key, wrapped by the KEK with associated data
	-- "skyflow/webhook-secret/<id>/<version>"; the version grows at each rotation.
	secret          bytea       NOT NULL,
	secret_version  integer     NOT NULL DEFAULT 1 CHECK (secret_version >= 1),
	-- After a rotation the previous key signs too until it expires.
	previous_secret         bytea,
	previous_secret_version integer,
	previous_expires_at     timestamptz,
	kek_id          text        NOT NULL,
	status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
	disabled_at     timestamptz,
	disabled_reason text,
	-- Health: the first failed attempt since the last success (NULL while
	-- healthy), and the dead deliveries since the last success.
	failing_since   timestamptz,
	consecutive_dead integer    NOT NULL DEFAULT 0,
	last_success_at timestamptz,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	CHECK ((previous_secret IS NULL) = (previous_expires_at IS NULL))
);
-- The listing, newest first, and the active endpoints an event is matched against.
CREATE INDEX webhook_endpoints_listing ON webhook_endpoints (created_at DESC, id DESC);
CREATE INDEX webhook_endpoints_active ON webhook_endpoints (vault_id) WHERE status = 'active';

-- One event's delivery to one endpoint, with its attempts so far. A
-- redelivered event (same source and id) finds its row and adds none.
CREATE TABLE webhook_deliveries (
	id              uuid        PRIMARY KEY,
	endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
	event_source    text        NOT NULL CHECK (event_source <> ''),
	event_id        text        NOT NULL CHECK (event_id <> ''),
	event_type      text        NOT NULL CHECK (event_type <> ''),
	-- The webhook-id header: stable for this event and endpoint.
	message_id      text        NOT NULL,
	-- The body every attempt sends, byte for byte (identifiers only, as
	-- the event carried them).
	payload         bytea       NOT NULL,
	state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'dead')),
	-- Attempts started so far. An attempt is claimed by raising it and
	-- leasing the row (next_attempt_at moves past the attempt's timeout),
	-- so two replicas never send the same attempt.
	attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_attempt_at timestamptz,
	-- The last attempt: its HTTP status (NULL when none came back), a short
	-- transport error (never a response body) and its duration.
	last_status     integer,
	last_error      text,
	last_latency_ms integer,
	last_attempt_at timestamptz,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	finished_at     timestamptz,
	UNIQUE (endpoint_id, event_source, event_id),
	CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The sweep's queue: pending deliveries in the order they fall due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- An endpoint's delivery log, newest first.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- Retention: finished deliveries are deleted after a while.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;
