package vaults

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/shared/apierr"
	"github.com/skyflow-oss/skyflow/shared/crypto"
	"github.com/skyflow-oss/skyflow/shared/request"
)

// KeyRotatedType is the event of a data-key rotation: new writes of the
// vault use the new primary key at once; keys-rewrap re-encrypts what
// older keys sealed.
const KeyRotatedType = "com.skyflow.vault.key.rotated"

// KeysView is a vault's data keys as the management API shows them:
// versions and key ids, never key material.
type KeysView struct {
	VaultID      string    `json:"vault_id"`
	KeysVersion  int       `json:"keys_version"`
	PrimaryKeyID uint32    `json:"primary_key_id"`
	RotatedAt    time.Time `json:"rotated_at"`
}

// keyRotation is the data of a KeyRotatedType event.
type keyRotation struct {
	VaultID      string `json:"vault_id"`
	Version      int    `json:"version"`
	PrimaryKeyID uint32 `json:"primary_key_id"`
}

// RotateKeys gives the vault's values keyset a new primary key, for a
// principal who may manage the vault. Older keys stay in the keyset, so
// every stored value still opens; the event tells keys-rewrap to
// re-encrypt them under the new key.
func (m *Manager) RotateKeys(ctx context.Context, p request.Principal, id string) (*KeysView, error) {
	v, err := m.manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	var view *KeysView
	err = m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var err error
		if view, err = m.Vaults.RotateKeys(ctx, tx, v.ID); err != nil {
			return nil, err
		}
		e := m.event(KeyRotatedType, p, v.ID, view.KeysVersion)
		if err := e.SetData(event.ApplicationJSON, keyRotation{VaultID: v.ID, Version: view.KeysVersion, PrimaryKeyID: view.PrimaryKeyID}); err != nil {
			return nil, err
		}
		return []event.Event{e}, nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return view, nil
}

// RotateKeys adds a new primary key to the stored values keyset in tx. It
// reads the stored keyset under a row lock rather than the cached one, so
// two rotations at once make two keys, neither lost; keys_version moves
// on, so every process reloads the keys on its next request.
func (s *Store) RotateKeys(ctx context.Context, tx pgx.Tx, id string) (*KeysView, error) {
	u, err := parseID(id)
	if err != nil {
		return nil, err
	}
	var w crypto.Wrapped
	err = tx.QueryRow(ctx, `SELECT values_keyset, index_keyset, kek_id FROM vault_keysets WHERE vault_id = $1 FOR UPDATE`, u).
		Scan(&w.Values, &w.Index, &w.KEKID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, unavailable(err)
	}
	keys, err := crypto.Unwrap(s.kek, id, w)
	if err != nil {
		return nil, apierr.Unavailable("the vault's keys could not be unwrapped with the key-encryption key; try again")
	}
	if err := keys.Rotate(); err != nil {
		return nil, apierr.Internal("a new data key could not be made")
	}
	if w, err = keys.Wrap(s.kek, id); err != nil {
		return nil, apierr.Unavailable("the key-encryption key is not available; try again")
	}
	view := &KeysView{VaultID: id, PrimaryKeyID: keys.PrimaryKeyID()}
	if _, err := tx.Exec(ctx, `UPDATE vault_keysets SET values_keyset = $2, index_keyset = $3, kek_id = $4, updated_at = now() WHERE vault_id = $1`,
		u, w.Values, w.Index, w.KEKID); err != nil {
		return nil, unavailable(err)
	}
	err = tx.QueryRow(ctx, `UPDATE vaults SET keys_version = keys_version + 1, updated_at = now() WHERE id = $1 RETURNING keys_version, updated_at`, u).
		Scan(&view.KeysVersion, &view.RotatedAt)
	if err != nil {
		return nil, unavailable(err)
	}
	view.RotatedAt = view.RotatedAt.UTC()
	return view, nil
}
