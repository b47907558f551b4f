package shredding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/keys"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Data subjects (migration 0012). Each subject of a vault has its own key;
// subject keys are wrapped by the vault's current epoch key, and each epoch
// key by a key outside the database (kek.SubjectEpochKeyID), both kept by
// the keyring of domain/keys. Forgetting a subject deletes its records and
// key row in one transaction (domain/records); then ShredSubjects starts a
// new epoch, rewraps the other subjects' keys under it and destroys the old
// epoch's outside key, so that the forgotten key, still present in every
// backup, can no longer be unwrapped by anyone.
//
// Why epochs rather than one outside key per subject: a Transit key (or a
// file) per person does not scale to millions of subjects, while one epoch
// key per vault costs one local AES-GCM rewrap per remaining subject and
// forget, and forgets made together share one epoch change.

// SubjectShreddedType: the epoch key that last wrapped a forgotten subject's
// key is destroyed, so no backup of the database can be decrypted for the
// subject any more.
const SubjectShreddedType = "com.skyflow.vault.subject.shredded"

// subjectIndexTable is the blind-index "table" of subject identifiers; no
// table can have this name, since table names are identifiers.
const subjectIndexTable = "#subject"

// Advisory locks on a vault's subject epoch: a writer making a subject key
// holds the shared lock from reading the epoch until its commit, and an
// epoch change takes the exclusive one, so no key is ever written under an
// epoch that a change has already moved past (and may be destroying).
const (
	epochSharedLock    = `SELECT pg_advisory_xact_lock_shared(hashtextextended('skyflow/subjects/' || $1::text, 0))`
	epochExclusiveLock = `SELECT pg_advisory_xact_lock(hashtextextended('skyflow/subjects/' || $1::text, 0))`
)

func subjectKeyAD(vaultID string, id uuid.UUID) []byte {
	return []byte("skyflow/subject-key/v1/" + vaultID + "/" + id.String())
}

// SubjectKeyFor returns the key of the data subject whose identifier is
// subject in vault v, making one under the vault's current epoch if the
// subject has none. It runs in the writer's tx: a record that names the
// key can only commit while the key row exists (a forget of the subject
// takes the row first, and the writer then fails on its reference).
func SubjectKeyFor(ctx context.Context, tx pgx.Tx, s *vaults.Store, v *vaults.Vault, subject string) (uuid.UUID, *crypto.SubjectKey, error) {
	u, _ := vaults.ParseID(v.ID)
	digests, err := v.Keys.BlindIndexes(subjectIndexTable, "", []byte(subject))
	if err != nil {
		return uuid.Nil, nil, apierr.Internal("a data subject could not be indexed")
	}
	find := func() (uuid.UUID, *crypto.SubjectKey, error) {
		var id uuid.UUID
		var wrapped []byte
		var epoch int
		err := tx.QueryRow(ctx, `SELECT id, wrapped, epoch FROM vault_subject_keys WHERE vault_id = $1 AND subject_index = ANY($2) ORDER BY created_at LIMIT 1`,
			u, digests).Scan(&id, &wrapped, &epoch)
		if err != nil {
			return uuid.Nil, nil, err
		}
		sk, err := openSubjectKey(ctx, tx, s.Keyring(), v.ID, u, id, wrapped, epoch)
		return id, sk, err
	}
	id, sk, err := find()
	if !errors.Is(err, pgx.ErrNoRows) {
		return id, sk, subjectKeyError(err)
	}
	if _, err := tx.Exec(ctx, epochSharedLock, u); err != nil {
		return uuid.Nil, nil, err
	}
	var epoch int
	if err := tx.QueryRow(ctx, `SELECT subject_epoch FROM vaults WHERE id = $1`, u).Scan(&epoch); err != nil {
		return uuid.Nil, nil, err
	}
	ek, err := s.Keyring().EpochKey(ctx, tx, v.ID, u, epoch, true)
	if err != nil {
		return uuid.Nil, nil, subjectKeyError(err)
	}
	id = uuid.New()
	material := crypto.NewSubjectKeyMaterial()
	wrapped, err := ek.Encrypt(material, subjectKeyAD(v.ID, id))
	if err != nil {
		return uuid.Nil, nil, subjectKeyError(err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO vault_subject_keys (id, vault_id, subject_index, wrapped, epoch) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (vault_id, subject_index) DO NOTHING`, id, u, digests[0], wrapped, epoch)
	if err != nil {
		return uuid.Nil, nil, err
	}
	if tag.RowsAffected() == 0 { // a concurrent writer made the subject's key first
		id, sk, err := find()
		return id, sk, subjectKeyError(err)
	}
	sk, err = crypto.NewSubjectKey([16]byte(id), material)
	return id, sk, subjectKeyError(err)
}

// subjectKeyError keeps API and database errors and reports a key that
// does not open without its details.
func subjectKeyError(err error) error {
	var ae *apierr.Error
	var pe *pgconn.PgError
	if err == nil || errors.As(err, &ae) || errors.As(err, &pe) {
		return err
	}
	// Key-store errors name keys and stores, never values.
	slog.Error("a data subject's key could not be opened or made", "error", err)
	if errors.Is(err, kek.ErrVaultKeyDestroyed) {
		return apierr.Internal("a data subject's key is under a destroyed epoch key")
	}
	return apierr.Unavailable("a data subject's key is not available; try again")
}

// openSubjectKey unwraps one stored subject key.
func openSubjectKey(ctx context.Context, q keys.Querier, r *keys.Keyring, vaultID string, u, id uuid.UUID, wrapped []byte, epoch int) (*crypto.SubjectKey, error) {
	ek, err := r.EpochKey(ctx, q, vaultID, u, epoch, false)
	if err != nil {
		return nil, err
	}
	material, err := ek.Decrypt(wrapped, subjectKeyAD(vaultID, id))
	if err != nil {
		return nil, fmt.Errorf("vaults: unwrap subject key %s: %w", id, err)
	}
	return crypto.NewSubjectKey([16]byte(id), material)
}

// SubjectKeys opens the subject keys ids of vault v, for reading records
// that belong to those subjects. A key that is gone (forgotten meanwhile)
// is left out.
func SubjectKeys(ctx context.Context, q keys.Querier, s *vaults.Store, v *vaults.Vault, ids []uuid.UUID) (map[uuid.UUID]*crypto.SubjectKey, error) {
	out := map[uuid.UUID]*crypto.SubjectKey{}
	if len(ids) == 0 {
		return out, nil
	}
	u, _ := vaults.ParseID(v.ID)
	rows, err := q.Query(ctx, `SELECT id, wrapped, epoch FROM vault_subject_keys WHERE vault_id = $1 AND id = ANY($2)`, u, ids)
	if err != nil {
		return nil, err
	}
	type stored struct {
		id      uuid.UUID
		wrapped []byte
		epoch   int
	}
	var keys []stored
	var k stored
	if _, err := pgx.ForEachRow(rows, []any{&k.id, &k.wrapped, &k.epoch}, func() error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, k := range keys {
		sk, err := openSubjectKey(ctx, q, s.Keyring(), v.ID, u, k.id, k.wrapped, k.epoch)
		if err != nil {
			return nil, subjectKeyError(err)
		}
		out[k.id] = sk
	}
	return out, nil
}

// SubjectDigests are the keyed digests a subject's key row may be filed
// under: the primary index key's first.
func SubjectDigests(v *vaults.Vault, subject string) ([][]byte, error) {
	return v.Keys.BlindIndexes(subjectIndexTable, "", []byte(subject))
}

// RefileSubjectKey files subject key id under the primary index key's
// digest of subject, after an index-key rotation: unless another key of
// the subject is filed there already (two writers on either side of the
// rotation made one each; a forget finds both through the records).
func RefileSubjectKey(ctx context.Context, tx pgx.Tx, v *vaults.Vault, id uuid.UUID, subject string) error {
	digest, err := v.Keys.BlindIndex(subjectIndexTable, "", []byte(subject))
	if err != nil {
		return err
	}
	u, _ := vaults.ParseID(v.ID)
	_, err = tx.Exec(ctx, `
		UPDATE vault_subject_keys k SET subject_index = $3
		WHERE k.id = $2 AND k.vault_id = $1 AND k.subject_index <> $3
		  AND NOT EXISTS (SELECT 1 FROM vault_subject_keys o WHERE o.vault_id = $1 AND o.subject_index = $3)`, u, id, digest)
	return err
}

// subjectShredding is the data of a SubjectShreddedType event.
type subjectShredding struct {
	VaultID     string    `json:"vault_id"`
	ForgetID    string    `json:"forget_id"`
	Records     int       `json:"records"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	Epoch       int       `json:"epoch"` // the destroyed epoch that last held the subject's key
}

// subjectRewrapBatch is how many subject keys one transaction rewraps.
const subjectRewrapBatch = 500

// ShredSubjects finishes the forgets of vault id: it moves the vault to a
// new subject epoch, rewraps every remaining subject key under the new
// epoch key, destroys the outside keys of the epochs before, and records
// each forget whose subject's key those epochs held (one
// SubjectShreddedType event each). It returns how many forgets it
// finished; when the deadline passes first it returns what it did, and a
// later call (keys-rewrap) resumes: every step is idempotent.
func (sh *Shredder) ShredSubjects(ctx context.Context, id string, deadline time.Time) (int, error) {
	u, err := vaults.ParseID(id)
	if err != nil {
		return 0, err
	}
	id = vaults.FormatID(u)
	var pending *int
	if err := sh.Pool.QueryRow(ctx, `SELECT max(epoch) FROM vault_subject_forgets WHERE vault_id = $1 AND shredded_at IS NULL`, u).Scan(&pending); err != nil {
		return 0, vaults.Unavailable(err)
	}
	if pending == nil {
		return 0, nil
	}
	target, err := sh.nextEpoch(ctx, id, u, *pending)
	if err != nil {
		return 0, err
	}
	for {
		if time.Now().After(deadline) {
			return 0, nil
		}
		n, err := sh.rewrapSubjectKeys(ctx, id, u, target)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			break
		}
	}
	rows, err := sh.Pool.Query(ctx, `SELECT epoch FROM vault_subject_epochs WHERE vault_id = $1 AND epoch < $2 AND destroyed_at IS NULL`, u, target)
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	r := sh.Vaults.Keyring()
	for _, e := range ended {
		r.DropEpochKey(id, e)
		if err := r.VaultKeys().Destroy(ctx, kek.SubjectEpochKeyID(id, e)); err != nil {
			return 0, fmt.Errorf("vaults: destroy subject epoch %d of vault %s: %w", e, id, err)
		}
		if _, err := sh.Pool.Exec(ctx, `UPDATE vault_subject_epochs SET wrapped = NULL, destroyed_at = now() WHERE vault_id = $1 AND epoch = $2`, u, e); err != nil {
			return 0, vaults.Unavailable(err)
		}
	}
	var done int
	err = sh.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		rows, err := tx.Query(ctx, `
			UPDATE vault_subject_forgets SET shredded_at = now()
			WHERE vault_id = $1 AND shredded_at IS NULL AND epoch < $2
			RETURNING id, records, requested_by, requested_at, epoch`, u, target)
		if err != nil {
			return nil, err
		}
		var events []event.Event
		var d subjectShredding
		var forget uuid.UUID
		_, err = pgx.ForEachRow(rows, []any{&forget, &d.Records, &d.RequestedBy, &d.RequestedAt, &d.Epoch}, func() error {
			d.VaultID, d.ForgetID = id, forget.String()
			e := vaults.NewEvent(sh.Source, SubjectShreddedType, request.Principal{ID: d.RequestedBy}, id, 1)
			e.SetSubject(d.ForgetID)
			if err := e.SetData(event.ApplicationJSON, d); err != nil {
				return err
			}
			events = append(events, e) // a copy: e is complete by now
			return nil
		})
		done = len(events)
		return events, err
	})
	if err == nil {
		subjectsShredded.Add(float64(done))
	}
	return done, vaults.Unavailable(err)
}

// nextEpoch moves vault u to a new subject epoch unless one began after
// the newest epoch a pending forget needs ended (a shred that stopped
// halfway), and returns the epoch every subject key must be under.
func (sh *Shredder) nextEpoch(ctx context.Context, id string, u uuid.UUID, pending int) (int, error) {
	var target int
	err := pgx.BeginFunc(ctx, sh.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, epochExclusiveLock, u); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT subject_epoch FROM vaults WHERE id = $1 FOR UPDATE`, u).Scan(&target); err != nil {
			return err
		}
		if target <= pending {
			target++
			if _, err := tx.Exec(ctx, `UPDATE vaults SET subject_epoch = $2 WHERE id = $1`, u, target); err != nil {
				return err
			}
		}
		_, err := sh.Vaults.Keyring().EpochKey(ctx, tx, id, u, target, true)
		return err
	})
	if err != nil {
		return 0, subjectKeyError(vaults.Unavailable(err))
	}
	return target, nil
}

// rewrapSubjectKeys moves up to a batch of vault u's subject keys from
// older epochs to epoch target, returning how many it moved.
func (sh *Shredder) rewrapSubjectKeys(ctx context.Context, id string, u uuid.UUID, target int) (int, error) {
	r := sh.Vaults.Keyring()
	var moved int
	err := pgx.BeginFunc(ctx, sh.Pool, func(tx pgx.Tx) error {
		// NO KEY UPDATE: records being inserted under these keys hold
		// KEY SHARE locks on them, which this does not wait for.
		rows, err := tx.Query(ctx, `SELECT id, wrapped, epoch FROM vault_subject_keys WHERE vault_id = $1 AND epoch < $2
			ORDER BY id LIMIT $3 FOR NO KEY UPDATE`, u, target, subjectRewrapBatch)
		if err != nil {
			return err
		}
		var ids []uuid.UUID
		var wrapped [][]byte
		var epochs []int
		var kid uuid.UUID
		var w []byte
		var e int
		if _, err := pgx.ForEachRow(rows, []any{&kid, &w, &e}, func() error {
			ids, wrapped, epochs = append(ids, kid), append(wrapped, w), append(epochs, e)
			return nil
		}); err != nil {
			return err
		}
		to, err := r.EpochKey(ctx, tx, id, u, target, false)
		if err != nil {
			return err
		}
		for i, kid := range ids {
			from, err := r.EpochKey(ctx, tx, id, u, epochs[i], false)
			if err != nil {
				return err
			}
			material, err := from.Decrypt(wrapped[i], subjectKeyAD(id, kid))
			if err != nil {
				return fmt.Errorf("vaults: unwrap subject key %s: %w", kid, err)
			}
			if wrapped[i], err = to.Encrypt(material, subjectKeyAD(id, kid)); err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE vault_subject_keys k SET wrapped = w.wrapped, epoch = $2
			FROM unnest($3::uuid[], $4::bytea[]) AS w(id, wrapped) WHERE k.vault_id = $1 AND k.id = w.id`, u, target, ids, wrapped)
		moved = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, subjectKeyError(vaults.Unavailable(err))
	}
	subjectKeysRewrapped.Add(float64(moved))
	return moved, nil
}

// FinishSubjectShreds resumes the shredding of every vault with a forget
// not yet shredded, until deadline; it returns how many forgets it
// finished.
func (sh *Shredder) FinishSubjectShreds(ctx context.Context, deadline time.Time) (int, error) {
	rows, err := sh.Pool.Query(ctx, `SELECT DISTINCT vault_id FROM vault_subject_forgets WHERE shredded_at IS NULL`)
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	total := 0
	for _, u := range ids {
		n, err := sh.ShredSubjects(ctx, vaults.FormatID(u), deadline)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// subjectKeysRewrapped counts subject keys moved to a new epoch key.
var subjectKeysRewrapped = func() prometheus.Counter {
	var err error
	return skymetrics.Register(skymetrics.Registry, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skyflow_vault_subject_keys_rewrapped_total",
		Help: "Data-subject keys rewrapped under a new epoch key after a forget.",
	}), &err)
}()

// subjectsShredded counts forgets whose subject's epoch key is destroyed.
var subjectsShredded = func() prometheus.Counter {
	var err error
	return skymetrics.Register(skymetrics.Registry, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skyflow_vault_subjects_shredded_total",
		Help: "Forgotten data subjects whose key no backup can open any more (their epoch key destroyed).",
	}), &err)
}()
