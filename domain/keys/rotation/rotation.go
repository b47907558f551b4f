// Package rotation is what happens to a vault's data keys over time: a
// rotation gives the vault a new primary key (asked for, or by
// keys-rotate-due when the primary reaches its age or use limit); the
// rewrap then re-encrypts the cells older keys sealed; once none is left
// the older versions can be destroyed; and a KEK rotation rewraps every
// stored keyset (RewrapKeysets). The keys-* functions call it.
//
// It builds on the registry (domain/vaults), which loads a vault and says
// who may manage it, on domain/keys, which keeps the keys wrapped, and on
// domain/shredding, whose subject keys the rewrap opens cells with.
package rotation

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/keys"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Manager carries out the key operations on vaults for one function: its
// events come from Source. Principals may act on the vaults they may
// manage (vaults.Store.Manageable).
type Manager struct {
	*vaults.Backend
	Source string
}

// NewManager returns a Manager on b whose events come from source.
func NewManager(b *vaults.Backend, source string) *Manager {
	return &Manager{Backend: b, Source: source}
}

// event is a key event about vault vaultID caused by p.
func (m *Manager) event(typ string, p request.Principal, vaultID string, version int) event.Event {
	return vaults.NewEvent(m.Source, typ, p, vaultID, version)
}

// Event types of key management.
const (
	// KeyRotatedType: new writes of the vault use the new primary key at
	// once; keys-rewrap re-encrypts what older keys sealed.
	KeyRotatedType = "com.skyflow.vault.key.rotated"
	// KeysDestroyedType: the vault's older key versions are gone.
	KeysDestroyedType = "com.skyflow.vault.keys.destroyed"
)

// KeysView is a vault's data keys as the management API shows them:
// versions and key ids, never key material.
type KeysView struct {
	VaultID      string    `json:"vault_id"`
	KeysVersion  int       `json:"keys_version"`
	PrimaryKeyID uint32    `json:"primary_key_id"`
	RotatedAt    time.Time `json:"rotated_at"`
	// Destroyed lists the key versions a destruction removed.
	Destroyed []uint32 `json:"destroyed_key_ids,omitempty"`
}

// KeysStatus is what GET /v1/management/vaults/{id}/keys shows: the key
// versions, and how far the rewrap to the primary has got.
type KeysStatus struct {
	VaultID      string       `json:"vault_id"`
	KeysVersion  int          `json:"keys_version"`
	PrimaryKeyID uint32       `json:"primary_key_id"`
	KeyIDs       []uint32     `json:"key_ids"`
	Versions     []KeyVersion `json:"versions"`
	// RotationPeriodDays is how often keys-rotate-due rotates the keys on
	// its own; 0 when only use (and requests) rotate them.
	RotationPeriodDays int             `json:"rotation_period_days"`
	Rewrap             *RewrapProgress `json:"rewrap"` // null before the first rotation
	Subjects           SubjectKeys     `json:"subjects"`
}

// SubjectKeys is the state of a vault's data-subject keys (domain/shredding).
type SubjectKeys struct {
	// Epoch is the current epoch: a forget ends it.
	Epoch int `json:"epoch"`
	// Keys is how many subjects have a key.
	Keys int64 `json:"keys"`
	// PendingForgets are forgets whose subject's epoch key is not
	// destroyed yet: their data is gone from the database, not yet from
	// its backups.
	PendingForgets int64 `json:"pending_forgets"`
}

// KeyVersion is one data-key version's age and use.
type KeyVersion struct {
	KeyID       uint32     `json:"key_id"`
	CreatedAt   time.Time  `json:"created_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	Encryptions int64      `json:"encryptions"`
}

// Keys reports a vault's key versions and rewrap progress, for a principal
// who may manage it.
func (m *Manager) Keys(ctx context.Context, p request.Principal, id string) (*KeysStatus, error) {
	v, err := m.Vaults.Manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	progress, err := m.RewrapProgress(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	st := &KeysStatus{VaultID: v.ID, KeysVersion: v.KeysVersion, PrimaryKeyID: v.Keys.PrimaryKeyID(), KeyIDs: v.Keys.KeyIDs(), Rewrap: progress}
	if err := m.keyVersions(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// keyVersions fills in the age and use of the versions in st.KeyIDs, and
// the rotation period.
func (m *Manager) keyVersions(ctx context.Context, st *KeysStatus) error {
	u, _ := vaults.ParseID(st.VaultID)
	ids := make([]int64, len(st.KeyIDs))
	for i, id := range st.KeyIDs {
		ids[i] = int64(id)
	}
	rows, err := m.Pool.Query(ctx, `
		SELECT key_id, created_at, retired_at, encryptions FROM vault_key_versions
		WHERE vault_id = $1 AND key_id = ANY($2) ORDER BY created_at, key_id`, u, ids)
	if err != nil {
		return vaults.Unavailable(err)
	}
	st.Versions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyVersion, error) {
		var kv KeyVersion
		var id int64
		err := r.Scan(&id, &kv.CreatedAt, &kv.RetiredAt, &kv.Encryptions)
		kv.KeyID = uint32(id)
		return kv, err
	})
	if err != nil {
		return vaults.Unavailable(err)
	}
	err = m.Pool.QueryRow(ctx, `
		SELECT extract(day from key_rotation_period)::int, subject_epoch,
		       (SELECT count(*) FROM vault_subject_keys WHERE vault_id = $1),
		       (SELECT count(*) FROM vault_subject_forgets WHERE vault_id = $1 AND shredded_at IS NULL)
		FROM vaults WHERE id = $1`, u).Scan(&st.RotationPeriodDays, &st.Subjects.Epoch, &st.Subjects.Keys, &st.Subjects.PendingForgets)
	return vaults.Unavailable(err)
}

// Why a vault's keys rotated: asked for, or by keys-rotate-due because the
// primary reached the vault's rotation period or its encryption limit.
const (
	RotationRequested = "requested"
	RotationAge       = "age"
	RotationUsage     = "usage"
)

// keyRotation is the data of a KeyRotatedType event.
type keyRotation struct {
	VaultID      string `json:"vault_id"`
	Version      int    `json:"version"`
	PrimaryKeyID uint32 `json:"primary_key_id"`
	Reason       string `json:"reason"`
}

// RotateKeys gives the vault's values keyset a new primary key, for a
// principal who may manage the vault. Older keys stay in the keyset, so
// every stored value still opens; the event tells keys-rewrap to
// re-encrypt them under the new key.
func (m *Manager) RotateKeys(ctx context.Context, p request.Principal, id string) (*KeysView, error) {
	return m.changeKeys(ctx, p, id, KeyRotatedType, m.rotate, rotationBecause(RotationRequested))
}

func rotationBecause(reason string) func(*KeysView) any {
	return func(v *KeysView) any {
		return keyRotation{VaultID: v.VaultID, Version: v.KeysVersion, PrimaryKeyID: v.PrimaryKeyID, Reason: reason}
	}
}

// DestroyOldKeys deletes every data-key version of the vault but the
// primary, for a principal who may manage it: a backup of the database
// taken before can no longer be decrypted where older versions sealed it.
// It is refused until the rewrap to the primary has finished and no cell
// is left under an older version, so no live value is ever lost.
func (m *Manager) DestroyOldKeys(ctx context.Context, p request.Principal, id string) (*KeysView, error) {
	return m.changeKeys(ctx, p, id, KeysDestroyedType, m.destroyOlder, func(v *KeysView) any {
		return keysDestroyed{VaultID: v.VaultID, Version: v.KeysVersion, Destroyed: v.Destroyed}
	})
}

// changeKeys makes one change to a vault's stored keys and its event, in
// one transaction.
func (m *Manager) changeKeys(ctx context.Context, p request.Principal, id, eventType string,
	change func(context.Context, pgx.Tx, string) (*KeysView, error), data func(*KeysView) any) (*KeysView, error) {
	v, err := m.Vaults.Manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return m.commitKeys(ctx, p, v.ID, eventType, change, data)
}

// commitKeys runs change and stores its event in one transaction.
func (m *Manager) commitKeys(ctx context.Context, p request.Principal, id, eventType string,
	change func(context.Context, pgx.Tx, string) (*KeysView, error), data func(*KeysView) any) (*KeysView, error) {
	var view *KeysView
	err := m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var err error
		if view, err = change(ctx, tx, id); err != nil {
			return nil, err
		}
		e := m.event(eventType, p, id, view.KeysVersion)
		if err := e.SetData(event.ApplicationJSON, data(view)); err != nil {
			return nil, err
		}
		return []event.Event{e}, nil
	})
	if errors.Is(err, errNotDue) {
		return nil, err
	}
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	return view, nil
}

// rotate adds a new primary key to the stored values keyset in tx. It
// reads the stored keyset under a row lock rather than the cached one, so
// two rotations at once make two keys, neither lost.
func (m *Manager) rotate(ctx context.Context, tx pgx.Tx, id string) (*KeysView, error) {
	u, ks, err := m.lockedKeys(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	previous := ks.PrimaryKeyID()
	if err := ks.Rotate(); err != nil {
		return nil, apierr.Internal("a new data key could not be made")
	}
	if err := recordRotation(ctx, tx, u, previous, ks.PrimaryKeyID()); err != nil {
		return nil, vaults.Unavailable(err)
	}
	return m.storeKeys(ctx, tx, u, id, ks)
}

// keysDestroyed is the data of a KeysDestroyedType event.
type keysDestroyed struct {
	VaultID   string   `json:"vault_id"`
	Version   int      `json:"version"`
	Destroyed []uint32 `json:"destroyed_key_ids"`
}

// destroyOlder removes the older values keys in tx, under the keyset's
// row lock, after checking that nothing is left under them.
func (m *Manager) destroyOlder(ctx context.Context, tx pgx.Tx, id string) (*KeysView, error) {
	u, ks, err := m.lockedKeys(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	primary := ks.PrimaryKeyID()
	var left int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM vault_cells WHERE vault_id = $1 AND substring(ciphertext from 2 for 4) <> $2`,
		u, keyIDBytes(primary)).Scan(&left); err != nil {
		return nil, vaults.Unavailable(err)
	}
	if left > 0 {
		return nil, apierr.New(409, "%d values of the vault are still under older key versions: wait for the rewrap to key %d to finish (see its progress), then destroy", left, primary)
	}
	destroyed, err := ks.DestroyOlder()
	if err != nil {
		return nil, apierr.Internal("the older key versions could not be removed")
	}
	if len(destroyed) == 0 {
		return nil, apierr.New(409, "the vault has no older key versions to destroy")
	}
	view, err := m.storeKeys(ctx, tx, u, id, ks)
	if err != nil {
		return nil, err
	}
	view.Destroyed = destroyed
	return view, nil
}

// lockedKeys reads and unwraps the vault's stored keys under a row lock.
func (m *Manager) lockedKeys(ctx context.Context, tx pgx.Tx, id string) (uuid.UUID, *crypto.Keys, error) {
	return lockedKeys(ctx, tx, m.Vaults.Keyring(), id)
}

func lockedKeys(ctx context.Context, tx pgx.Tx, r *keys.Keyring, id string) (uuid.UUID, *crypto.Keys, error) {
	u, err := vaults.ParseID(id)
	if err != nil {
		return u, nil, err
	}
	ks, err := r.Lock(ctx, tx, u, id)
	if errors.Is(err, keys.ErrNoKeyset) {
		return u, nil, vaults.ErrNotFound()
	}
	if err != nil {
		return u, nil, vaults.Unavailable(err)
	}
	return u, ks, nil
}

// storeKeys wraps and stores keys in tx and moves keys_version on, so
// every process reloads them on its next request.
func (m *Manager) storeKeys(ctx context.Context, tx pgx.Tx, u uuid.UUID, id string, ks *crypto.Keys) (*KeysView, error) {
	w, err := m.Vaults.Keyring().Wrap(ctx, id, ks)
	if err != nil {
		return nil, err
	}
	view := &KeysView{VaultID: id, PrimaryKeyID: ks.PrimaryKeyID()}
	if err := w.Update(ctx, tx, u); err != nil {
		return nil, vaults.Unavailable(err)
	}
	err = tx.QueryRow(ctx, `UPDATE vaults SET keys_version = keys_version + 1, updated_at = now() WHERE id = $1 RETURNING keys_version, updated_at`, u).
		Scan(&view.KeysVersion, &view.RotatedAt)
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	view.RotatedAt = view.RotatedAt.UTC()
	return view, nil
}
