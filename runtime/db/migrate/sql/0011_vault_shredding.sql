-- Crypto-shredding (domain/vaults/shred.go). A vault's keysets are wrapped
-- by the KEK and then by the vault's own key, kept outside this database
-- (kek.VaultKeys: a Transit key per vault, or a key file locally);
-- vault_key says which keysets have that outer layer (vaults made before,
-- or without a vault key store, have not, until their keys are next
-- stored).
ALTER TABLE vault_keysets ADD COLUMN vault_key boolean NOT NULL DEFAULT false;

-- Deleted vaults whose key must be destroyed: written in the deletion's
-- transaction, so a key whose destruction failed after the commit is
-- destroyed by the next sweep (keys-rotate-due). The row outlives the
-- vault on purpose: it is the record of when the vault's data became
-- unreadable everywhere, backups included. Ids and a name only.
CREATE TABLE vault_shreds (
	vault_id     uuid        PRIMARY KEY,
	vault_name   text        NOT NULL,
	requested_by text        NOT NULL,
	requested_at timestamptz NOT NULL DEFAULT now(),
	destroyed_at timestamptz
);
CREATE INDEX vault_shreds_pending ON vault_shreds (requested_at) WHERE destroyed_at IS NULL;
