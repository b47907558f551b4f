package vaults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Event types of a vault's deletion.
const (
	// VaultDeletedType: the vault and everything in it are gone from the
	// database; crypto_shredding says whether its key was destroyed too.
	VaultDeletedType = "com.skyflow.vault.deleted"
	// VaultShreddedType: the vault's key is destroyed, so no backup of the
	// database can be decrypted for it any more.
	VaultShreddedType = "com.skyflow.vault.shredded"
)

// Crypto-shredding states of a deleted vault.
const (
	ShredDone        = "done"        // the vault key is destroyed
	ShredPending     = "pending"     // its destruction failed; the next sweep retries
	ShredUnavailable = "unavailable" // the vault had no key of its own to destroy
)

// storedKeys are a vault_keysets row: the keysets wrapped by the KEK and,
// when vaultKey is set, then by the vault's own key.
type storedKeys struct {
	crypto.Wrapped
	vaultKey bool
}

func (w storedKeys) update(ctx context.Context, tx pgx.Tx, u uuid.UUID) error {
	_, err := tx.Exec(ctx, `
		UPDATE vault_keysets SET values_keyset = $2, index_keyset = $3, kek_id = $4, vault_key = $5, updated_at = now()
		WHERE vault_id = $1`, u, w.Values, w.Index, w.KEKID, w.vaultKey)
	return err
}

// vaultKeyAD binds a keyset's outer layer to its vault and purpose.
func vaultKeyAD(id, purpose string) []byte { return []byte("skyflow/vault-key/" + id + "/" + purpose) }

// wrapKeys wraps keys with the KEK, then with the vault's own key (made
// on first use) when the store has vault keys.
func (s *Store) wrapKeys(ctx context.Context, id string, keys *crypto.Keys) (storedKeys, error) {
	w, err := keys.Wrap(s.kek, id)
	if err != nil {
		return storedKeys{}, apierr.Unavailable("the key-encryption key is not available; try again")
	}
	if s.vaultKeys == nil {
		return storedKeys{Wrapped: w}, nil
	}
	vk, err := s.vaultKeys.For(ctx, id, true)
	if err != nil {
		return storedKeys{}, apierr.Unavailable("the vault's own key is not available; try again")
	}
	if w.Values, err = vk.Encrypt(w.Values, vaultKeyAD(id, "values")); err == nil {
		w.Index, err = vk.Encrypt(w.Index, vaultKeyAD(id, "index"))
	}
	if err != nil {
		return storedKeys{}, apierr.Unavailable("the vault's own key is not available; try again")
	}
	return storedKeys{Wrapped: w, vaultKey: true}, nil
}

// unwrapKeys opens what wrapKeys stored.
func (s *Store) unwrapKeys(ctx context.Context, id string, w storedKeys) (*crypto.Keys, error) {
	inner := w.Wrapped
	if w.vaultKey {
		if s.vaultKeys == nil {
			return nil, apierr.Internal("the vault's keys are wrapped by a vault key, and no vault key store is configured (SKYFLOW_VAULT_KEYS_DIR or VAULT_ADDR)")
		}
		vk, err := s.vaultKeys.For(ctx, id, false)
		if err == nil {
			if inner.Values, err = vk.Decrypt(w.Values, vaultKeyAD(id, "values")); err == nil {
				inner.Index, err = vk.Decrypt(w.Index, vaultKeyAD(id, "index"))
			}
		}
		if errors.Is(err, kek.ErrVaultKeyDestroyed) {
			return nil, apierr.NotFound("the vault's key was destroyed: its data cannot be read by anyone")
		}
		if err != nil {
			return nil, apierr.Unavailable("the vault's own key is not available; try again")
		}
	}
	keys, err := crypto.Unwrap(s.kek, id, inner)
	if err != nil {
		return nil, apierr.Internal("the vault's keys could not be unwrapped with the key-encryption key")
	}
	return keys, nil
}

// Deleted is the answer to DELETE /v1/management/vaults/{id}.
type Deleted struct {
	VaultID         string `json:"vault_id"`
	Deleted         bool   `json:"deleted"`
	CryptoShredding string `json:"crypto_shredding"` // done, pending or unavailable
}

// vaultDeletion is the data of a VaultDeletedType event.
type vaultDeletion struct {
	VaultID         string `json:"vault_id"`
	Name            string `json:"name"`
	CryptoShredding string `json:"crypto_shredding"`
}

// DeleteVault deletes a vault with everything in it, for a principal who
// may manage it, and then destroys its key: every copy of its data, the
// database's backups included, is then unreadable. The deletion, its event
// and the pending destruction are one transaction; the key goes after the
// commit (a failure leaves it pending for FinishShreds), so a vault is
// never left undeletable with its key gone.
func (m *Manager) DeleteVault(ctx context.Context, p request.Principal, id string) (*Deleted, error) {
	v, err := m.manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	u, _ := parseID(v.ID)
	state := ShredUnavailable
	err = m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var layered bool
		if err := tx.QueryRow(ctx, `SELECT vault_key FROM vault_keysets WHERE vault_id = $1 FOR UPDATE`, u).Scan(&layered); err != nil {
			return nil, err
		}
		if layered {
			state = ShredPending
			if _, err := tx.Exec(ctx, `INSERT INTO vault_shreds (vault_id, vault_name, requested_by, subject_epoch)
				SELECT $1, $2, $3, subject_epoch FROM vaults WHERE id = $1`, u, v.Name, p.ID); err != nil {
				return nil, err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM vaults WHERE id = $1`, u); err != nil {
			return nil, err
		}
		e := m.event(VaultDeletedType, p, v.ID, v.SchemaVersion)
		// The data first: the slice holds a copy of e.
		err := e.SetData(event.ApplicationJSON, vaultDeletion{VaultID: v.ID, Name: v.Name, CryptoShredding: state})
		return []event.Event{e}, err
	})
	if err != nil {
		return nil, unavailable(err)
	}
	m.Vaults.forget(v.ID)
	if state == ShredPending {
		if err := m.shred(ctx, u); err != nil {
			slog.WarnContext(ctx, "a deleted vault's key could not be destroyed yet; the next sweep retries", "vault", v.ID, "err", err)
		} else {
			state = ShredDone
		}
	}
	return &Deleted{VaultID: v.ID, Deleted: true, CryptoShredding: state}, nil
}

// vaultShredding is the data of a VaultShreddedType event.
type vaultShredding struct {
	VaultID     string    `json:"vault_id"`
	Name        string    `json:"name"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
}

// FinishShreds destroys the keys of deleted vaults whose destruction
// failed before, and returns how many it destroyed.
func (m *Manager) FinishShreds(ctx context.Context) (int, error) {
	rows, err := m.Vaults.pool.Query(ctx, `SELECT vault_id FROM vault_shreds WHERE destroyed_at IS NULL ORDER BY requested_at LIMIT 1000`)
	if err != nil {
		return 0, unavailable(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, unavailable(err)
	}
	for n, u := range ids {
		if err := m.shred(ctx, u); err != nil {
			return n, err
		}
	}
	return len(ids), nil
}

// shred destroys a deleted vault's key and its subject epochs' keys, then
// records it and its event.
func (m *Manager) shred(ctx context.Context, u uuid.UUID) error {
	if m.Vaults.vaultKeys == nil {
		return errors.New("vaults: no vault key store is configured to destroy the key in")
	}
	id := FormatID(u)
	if err := m.Vaults.vaultKeys.Destroy(ctx, id); err != nil {
		return fmt.Errorf("vaults: destroy the key of vault %s: %w", id, err)
	}
	var epochs int
	if err := m.Vaults.pool.QueryRow(ctx, `SELECT subject_epoch FROM vault_shreds WHERE vault_id = $1`, u).Scan(&epochs); err != nil {
		return err
	}
	// Destroying a key that was never made (or is gone) is no error.
	for e := 1; e <= epochs; e++ {
		if err := m.Vaults.vaultKeys.Destroy(ctx, kek.SubjectEpochKeyID(id, e)); err != nil {
			return fmt.Errorf("vaults: destroy subject epoch %d of vault %s: %w", e, id, err)
		}
	}
	return m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var d vaultShredding
		err := tx.QueryRow(ctx, `
			UPDATE vault_shreds SET destroyed_at = now() WHERE vault_id = $1 AND destroyed_at IS NULL
			RETURNING vault_name, requested_by, requested_at`, u).Scan(&d.Name, &d.RequestedBy, &d.RequestedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil // another sweep recorded it
		}
		if err != nil {
			return nil, err
		}
		d.VaultID = id
		e := m.event(VaultShreddedType, request.Principal{ID: d.RequestedBy}, id, 1)
		err = e.SetData(event.ApplicationJSON, d) // before the slice copies e
		return []event.Event{e}, err
	})
}

// forget drops a vault from the process's cache.
func (s *Store) forget(id string) {
	u, err := parseID(id)
	if err != nil {
		return
	}
	s.mu.Lock()
	delete(s.cache, u.String())
	s.mu.Unlock()
}
