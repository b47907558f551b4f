// Package keys keeps vaults' data keys at rest: each vault's two Tink
// keysets wrapped by the key-encryption key and, where the deployment has
// vault keys (kek.VaultKeys), by the vault's own key too, so that
// destroying that key shreds the vault; the keys of a vault's data-subject
// epochs, wrapped by keys kept outside the database; and a count of the
// values each data key sealed, toward its rotation.
//
// It knows a vault by its id only. The registry (domain/vaults) opens a
// vault's keys when it loads it and wraps new ones when it creates it;
// domain/keys/rotation changes them over time; domain/shredding destroys
// them.
package keys

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Keyring wraps, opens and counts the data keys of the vaults in one
// database. One per process: it caches unwrapped epoch keys and the seal
// counts not yet stored.
type Keyring struct {
	pool *pgxpool.Pool
	kek  kek.KEK
	// vaultKeys, when set, wraps every keyset a second time with its
	// vault's own key, kept outside the database (crypto-shredding), and
	// keeps the outside keys of the data-subject epochs (epochs.go).
	vaultKeys kek.VaultKeys
	usage     keyUsage
	epochs    epochKeys
}

// NewKeyring returns a Keyring on pool whose keysets are wrapped by k.
func NewKeyring(pool *pgxpool.Pool, k kek.KEK) *Keyring {
	return &Keyring{pool: pool, kek: k}
}

// WithVaultKeys has r wrap the keysets it stores with each vault's own key
// too, so that deleting a vault can shred it. Every process of a
// deployment must be given the same store.
func (r *Keyring) WithVaultKeys(vk kek.VaultKeys) *Keyring {
	r.vaultKeys = vk
	return r
}

// VaultKeys is the store of the keys kept outside the database; nil when
// the deployment has none.
func (r *Keyring) VaultKeys() kek.VaultKeys { return r.vaultKeys }

// Querier is a transaction or the pool.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Stored is a vault_keysets row: the keysets wrapped by the KEK and, when
// VaultKey is set, then by the vault's own key.
type Stored struct {
	crypto.Wrapped
	VaultKey bool
}

// Update writes w over vault u's keysets row.
func (w Stored) Update(ctx context.Context, tx pgx.Tx, u uuid.UUID) error {
	_, err := tx.Exec(ctx, `
		UPDATE vault_keysets SET values_keyset = $2, index_keyset = $3, kek_id = $4, vault_key = $5, updated_at = now()
		WHERE vault_id = $1`, u, w.Values, w.Index, w.KEKID, w.VaultKey)
	return err
}

// vaultKeyAD binds a keyset's outer layer to its vault and purpose.
func vaultKeyAD(id, purpose string) []byte { return []byte("skyflow/vault-key/" + id + "/" + purpose) }

// Wrap wraps vault id's keys with the KEK, then with the vault's own key
// (made on first use) when the keyring has vault keys.
func (r *Keyring) Wrap(ctx context.Context, id string, keys *crypto.Keys) (Stored, error) {
	w, err := keys.Wrap(r.kek, id)
	if err != nil {
		return Stored{}, apierr.Unavailable("the key-encryption key is not available; try again")
	}
	if r.vaultKeys == nil {
		return Stored{Wrapped: w}, nil
	}
	vk, err := r.vaultKeys.For(ctx, id, true)
	if err != nil {
		return Stored{}, apierr.Unavailable("the vault's own key is not available; try again")
	}
	if w.Values, err = vk.Encrypt(w.Values, vaultKeyAD(id, "values")); err == nil {
		w.Index, err = vk.Encrypt(w.Index, vaultKeyAD(id, "index"))
	}
	if err != nil {
		return Stored{}, apierr.Unavailable("the vault's own key is not available; try again")
	}
	return Stored{Wrapped: w, VaultKey: true}, nil
}

// Open unwraps what Wrap stored for vault id.
func (r *Keyring) Open(ctx context.Context, id string, w Stored) (*crypto.Keys, error) {
	inner := w.Wrapped
	if w.VaultKey {
		if r.vaultKeys == nil {
			return nil, apierr.Internal("the vault's keys are wrapped by a vault key, and no vault key store is configured (SKYFLOW_VAULT_KEYS_DIR or VAULT_ADDR)")
		}
		vk, err := r.vaultKeys.For(ctx, id, false)
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
	keys, err := crypto.Unwrap(r.kek, id, inner)
	if err != nil {
		return nil, apierr.Internal("the vault's keys could not be unwrapped with the key-encryption key")
	}
	return keys, nil
}

// ErrNoKeyset is Lock's answer for a vault without a keyset row: it does
// not exist (any more).
var ErrNoKeyset = errors.New("keys: the vault has no keyset")

// Lock reads and opens vault u's (id's) stored keys under a row lock in tx,
// so that two changes at once are made one after the other, neither lost.
func (r *Keyring) Lock(ctx context.Context, tx pgx.Tx, u uuid.UUID, id string) (*crypto.Keys, error) {
	var w Stored
	err := tx.QueryRow(ctx, `SELECT values_keyset, index_keyset, kek_id, vault_key FROM vault_keysets WHERE vault_id = $1 FOR UPDATE`, u).
		Scan(&w.Values, &w.Index, &w.KEKID, &w.VaultKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoKeyset
	}
	if err != nil {
		return nil, err
	}
	return r.Open(ctx, id, w)
}
