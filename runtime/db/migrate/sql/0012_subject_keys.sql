-- Data subjects (domain/vaults/subjects.go): "forget" for one person.
--
-- A table may name one column its data_subject column. Every record of such
-- a table belongs to the subject its value names, and its cells are sealed
-- first with that subject's own key, then with the vault's data key as
-- usual. The subject keys are stored here, wrapped by the vault's current
-- subject epoch key; each epoch key is stored here wrapped by a key kept
-- outside this database (kek.VaultKeys, "<vault>-s<epoch>").
--
-- Forgetting a subject deletes its records and its key row, then starts a
-- new epoch: every remaining subject key is rewrapped under the new epoch
-- key and the old epoch's outside key is destroyed. From then on no backup
-- of this database can open the forgotten subject's key, so none can open
-- its values; the other subjects lose nothing.

ALTER TABLE vaults ADD COLUMN subject_epoch int NOT NULL DEFAULT 1 CHECK (subject_epoch > 0);

-- Each epoch's key, wrapped by its outside key. The row of a finished
-- epoch keeps only destroyed_at: its wrapped key is useless by then.
CREATE TABLE vault_subject_epochs (
	vault_id     uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	epoch        int         NOT NULL CHECK (epoch > 0),
	wrapped      bytea,
	created_at   timestamptz NOT NULL DEFAULT now(),
	destroyed_at timestamptz,
	PRIMARY KEY (vault_id, epoch),
	CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

-- One key per data subject. subject_index is the keyed digest of the
-- subject's identifier (the vault's index key, as blind indexes are), never
-- the identifier itself.
CREATE TABLE vault_subject_keys (
	id            uuid        PRIMARY KEY,
	vault_id      uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	subject_index bytea       NOT NULL,
	wrapped       bytea       NOT NULL,
	epoch         int         NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vault_id, subject_index)
);
CREATE INDEX vault_subject_keys_by_epoch ON vault_subject_keys (vault_id, epoch);

-- The subject a record belongs to. A forget deletes the records before
-- their key, so the reference never dangles; a record insert racing a
-- forget fails on it instead of writing under a key being destroyed.
ALTER TABLE vault_records ADD COLUMN subject_key uuid REFERENCES vault_subject_keys;
CREATE INDEX vault_records_by_subject ON vault_records (subject_key) WHERE subject_key IS NOT NULL;

-- Each forget: who asked and when, how many records went, and when the
-- epoch that still held the subject's key was destroyed (the moment the
-- subject became unreadable in every backup). Ids and counts only.
CREATE TABLE vault_subject_forgets (
	id           uuid        PRIMARY KEY,
	-- A deleted vault's forgets go with it: vault_shreds records that.
	vault_id     uuid        NOT NULL REFERENCES vaults ON DELETE CASCADE,
	requested_by text        NOT NULL,
	requested_at timestamptz NOT NULL DEFAULT now(),
	records      int         NOT NULL,
	-- The newest epoch whose key wrapped the forgotten key.
	epoch        int         NOT NULL,
	shredded_at  timestamptz
);
CREATE INDEX vault_subject_forgets_pending ON vault_subject_forgets (vault_id, epoch) WHERE shredded_at IS NULL;

-- A deleted vault's subject epochs: their outside keys go with its own.
ALTER TABLE vault_shreds ADD COLUMN subject_epoch int NOT NULL DEFAULT 0;
