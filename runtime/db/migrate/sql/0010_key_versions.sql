-- The data-key versions of each vault (domain/vaults/usage.go): when each
-- became primary, when a rotation retired it, and how many values it has
-- sealed. keys-rotate-due rotates a vault whose primary is older than the
-- vault's rotation period, or has sealed so many values that AES-GCM's
-- random 96-bit nonces near their safe limit (NIST SP 800-38D: 2^32
-- encryptions a key). Each process counts its encryptions and adds them
-- here every few seconds, so the count may lag (or, after a crash, miss a
-- few seconds' worth); the threshold leaves room for that.
CREATE TABLE vault_key_versions (
	vault_id    uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	key_id      bigint      NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	-- NULL while the version is the vault's primary.
	retired_at  timestamptz,
	encryptions bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (vault_id, key_id)
);
CREATE UNIQUE INDEX vault_key_versions_primary ON vault_key_versions (vault_id) WHERE retired_at IS NULL;

-- How often a vault's data keys rotate on their own; '0' turns age-based
-- rotation off (usage-based rotation always applies).
ALTER TABLE vaults ADD COLUMN key_rotation_period interval NOT NULL DEFAULT interval '90 days'
	CHECK (key_rotation_period >= interval '0');
