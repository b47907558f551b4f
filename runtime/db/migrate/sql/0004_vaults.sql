-- The vault core (domain/vaults, domain/records and the vaults-* and
-- records-*/tokens-* functions). No column here ever holds a plaintext
-- value: cells hold AEAD ciphertext bound to vault/table/column/record,
-- lookups go through keyed blind indexes, and keysets are stored wrapped
-- by the key-encryption key.

CREATE TABLE vaults (
	id             uuid        PRIMARY KEY,
	name           text        NOT NULL CHECK (name <> ''),
	schema_version int         NOT NULL CHECK (schema_version > 0),
	policy_version int         NOT NULL CHECK (policy_version > 0),
	-- Bumped whenever vault_keysets changes, so caches of unwrapped keys
	-- notice.
	keys_version   int         NOT NULL DEFAULT 1,
	created_by     text        NOT NULL,
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Every version of a vault's schema and policy is kept: a change is a new
-- row, and vaults.*_version names the current one.
CREATE TABLE vault_schemas (
	vault_id   uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	version    int         NOT NULL CHECK (version > 0),
	schema     jsonb       NOT NULL,
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (vault_id, version)
);

CREATE TABLE vault_policies (
	vault_id   uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	version    int         NOT NULL CHECK (version > 0),
	policy     jsonb       NOT NULL,
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (vault_id, version)
);

-- A vault's data keys: an AEAD keyset for values and a PRF keyset for
-- blind indexes and deterministic tokens, each wrapped by the KEK named
-- by kek_id with the vault id as associated data.
CREATE TABLE vault_keysets (
	vault_id      uuid        PRIMARY KEY REFERENCES vaults ON DELETE CASCADE,
	values_keyset bytea       NOT NULL,
	index_keyset  bytea       NOT NULL,
	kek_id        text        NOT NULL,
	updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per record; skyflow ids are unique per vault.
CREATE TABLE vault_records (
	vault_id   uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	id         uuid        NOT NULL,
	table_name text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (vault_id, id)
);
CREATE INDEX vault_records_by_table ON vault_records (vault_id, table_name, created_at, id);

-- One row per stored value (a record's column).
CREATE TABLE vault_cells (
	vault_id     uuid  NOT NULL,
	record_id    uuid  NOT NULL,
	column_name  text  NOT NULL,
	table_name   text  NOT NULL,
	-- Tink AEAD ciphertext of the value's canonical JSON; its 5-byte
	-- prefix names the key version that sealed it.
	ciphertext   bytea NOT NULL,
	-- Keyed PRF of the canonical value, per table and column: equality
	-- lookups and uniqueness without decrypting. NULL for json and array
	-- columns, which are never looked up.
	blind_index  bytea,
	-- The blind index again for unique columns only, so that the unique
	-- index below enforces `unique` in the schema.
	unique_index bytea,
	token        text,
	PRIMARY KEY (vault_id, record_id, column_name),
	FOREIGN KEY (vault_id, record_id) REFERENCES vault_records ON DELETE CASCADE
);
CREATE INDEX vault_cells_lookup ON vault_cells (vault_id, table_name, column_name, blind_index);
CREATE UNIQUE INDEX vault_cells_unique ON vault_cells (vault_id, table_name, column_name, unique_index)
	WHERE unique_index IS NOT NULL;
CREATE INDEX vault_cells_token ON vault_cells (vault_id, token) WHERE token IS NOT NULL;

-- Every token a vault has handed out, so that tokens are unique per vault
-- whatever their type (a format-preserving token has a small space), and
-- a deterministic token stays the same for the same value in its column
-- group: (column_group, value_index) → token. Random tokens name their
-- cell and are deleted with it.
CREATE TABLE vault_tokens (
	vault_id     uuid NOT NULL REFERENCES vaults ON DELETE CASCADE,
	token        text NOT NULL,
	column_group text,
	value_index  bytea,
	record_id    uuid,
	column_name  text,
	PRIMARY KEY (vault_id, token),
	UNIQUE (vault_id, column_group, value_index),
	CHECK ((column_group IS NULL) = (value_index IS NULL)),
	CHECK ((column_group IS NULL) = (record_id IS NOT NULL))
);
CREATE INDEX vault_tokens_by_record ON vault_tokens (vault_id, record_id) WHERE record_id IS NOT NULL;
