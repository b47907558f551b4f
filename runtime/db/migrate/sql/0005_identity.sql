-- Identity (domain/identity and the users-*, auth-*, serviceaccounts-* and
-- apikeys-* functions): users, their sessions, service accounts, API keys,
-- role assignments and the service's signing keys. No secret is stored in
-- the clear: passwords as argon2id hashes, refresh tokens, verification
-- tokens and API keys as SHA-256 hashes (they are random, 256 bits), and
-- signing keys wrapped by the key-encryption key.

CREATE TABLE users (
	id                uuid        PRIMARY KEY,
	-- Lower-cased; unique.
	email             text        NOT NULL UNIQUE CHECK (email = lower(email)),
	password_hash     text        NOT NULL,
	display_name      text        NOT NULL,
	email_verified_at timestamptz,
	-- Notification preferences: event kind → channels.
	preferences       jsonb       NOT NULL DEFAULT '{}',
	created_at        timestamptz NOT NULL DEFAULT now(),
	updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE email_verifications (
	token_hash bytea       PRIMARY KEY,
	user_id    uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);

-- Refresh tokens rotate on every use; all tokens of one login are a family.
-- Using a spent token again revokes the whole family (it was stolen).
CREATE TABLE refresh_tokens (
	token_hash bytea       PRIMARY KEY,
	family_id  uuid        NOT NULL,
	user_id    uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
	-- The access token issued with it, denied at log out until it expires.
	access_jti text        NOT NULL,
	access_exp timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Roles held by principals ("user:<id>", "sa:<client id>").
CREATE TABLE role_assignments (
	principal  text        NOT NULL,
	role       text        NOT NULL,
	granted_by text        NOT NULL,
	granted_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (principal, role)
);

CREATE TABLE service_accounts (
	client_id  text        PRIMARY KEY,
	name       text        NOT NULL,
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz
);

-- A service account's public keys (credentials.json holds the private
-- key, returned once and never stored).
CREATE TABLE service_account_keys (
	key_id     text        PRIMARY KEY,
	client_id  text        NOT NULL REFERENCES service_accounts ON DELETE CASCADE,
	public_key bytea       NOT NULL, -- PKIX DER
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz
);

CREATE TABLE api_keys (
	id         uuid        PRIMARY KEY,
	-- The first characters of the key, to tell keys apart in lists.
	prefix     text        NOT NULL,
	key_hash   bytea       NOT NULL UNIQUE,
	-- The principal the key acts as.
	principal  text        NOT NULL,
	name       text        NOT NULL,
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz
);
CREATE INDEX api_keys_by_principal ON api_keys (principal);

-- The service's token signing keys. The newest active key signs; every
-- key verifies until verify_until, after the last token it signed has
-- expired.
CREATE TABLE signing_keys (
	kid          text        PRIMARY KEY,
	alg          text        NOT NULL,
	public_key   bytea       NOT NULL, -- PKIX DER
	private_key  bytea       NOT NULL, -- wrapped by the KEK, associated data "skyflow/signing-key/<kid>"
	kek_id       text        NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	sign_until   timestamptz NOT NULL,
	verify_until timestamptz NOT NULL
);
