-- Re-encryption of a vault's cells after a data-key rotation (keys-rewrap).
-- One row per vault: the key version its cells are being moved to, how far
-- it has got, and when it finished. The work itself is idempotent (a cell
-- is moved only while it is not under the target key), so this row is
-- progress to show and the list of rewraps to resume, not a cursor that
-- must be exact.
CREATE TABLE vault_rewraps (
	vault_id      uuid        PRIMARY KEY REFERENCES vaults ON DELETE CASCADE,
	target_key_id bigint      NOT NULL,
	rewrapped     bigint      NOT NULL DEFAULT 0,
	remaining     bigint,
	-- Where the current pass has got to, in (record_id, column_name) order.
	cursor_record uuid,
	cursor_column text,
	started_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	finished_at   timestamptz
);
CREATE INDEX vault_rewraps_unfinished ON vault_rewraps (updated_at) WHERE finished_at IS NULL;
