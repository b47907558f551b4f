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

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/vaults"
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
func (sh *Shredder) DeleteVault(ctx context.Context, p request.Principal, id string) (*Deleted, error) {
	v, err := sh.Vaults.Manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	u, _ := vaults.ParseID(v.ID)
	state := ShredUnavailable
	err = sh.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
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
		e := vaults.NewEvent(sh.Source, VaultDeletedType, p, v.ID, v.SchemaVersion)
		// The data first: the slice holds a copy of e.
		err := e.SetData(event.ApplicationJSON, vaultDeletion{VaultID: v.ID, Name: v.Name, CryptoShredding: state})
		return []event.Event{e}, err
	})
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	sh.Vaults.Forget(v.ID)
	if state == ShredPending {
		if err := sh.shred(ctx, u); err != nil {
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
func (sh *Shredder) FinishShreds(ctx context.Context) (int, error) {
	rows, err := sh.Pool.Query(ctx, `SELECT vault_id FROM vault_shreds WHERE destroyed_at IS NULL ORDER BY requested_at LIMIT 1000`)
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	for n, u := range ids {
		if err := sh.shred(ctx, u); err != nil {
			return n, err
		}
	}
	return len(ids), nil
}

// shred destroys a deleted vault's key and its subject epochs' keys, then
// records it and its event.
func (sh *Shredder) shred(ctx context.Context, u uuid.UUID) error {
	outside := sh.Vaults.Keyring().VaultKeys()
	if outside == nil {
		return errors.New("vaults: no vault key store is configured to destroy the key in")
	}
	id := vaults.FormatID(u)
	if err := outside.Destroy(ctx, id); err != nil {
		return fmt.Errorf("vaults: destroy the key of vault %s: %w", id, err)
	}
	var epochs int
	if err := sh.Pool.QueryRow(ctx, `SELECT subject_epoch FROM vault_shreds WHERE vault_id = $1`, u).Scan(&epochs); err != nil {
		return err
	}
	// Destroying a key that was never made (or is gone) is no error.
	for e := 1; e <= epochs; e++ {
		if err := outside.Destroy(ctx, kek.SubjectEpochKeyID(id, e)); err != nil {
			return fmt.Errorf("vaults: destroy subject epoch %d of vault %s: %w", e, id, err)
		}
	}
	return sh.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
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
		e := vaults.NewEvent(sh.Source, VaultShreddedType, request.Principal{ID: d.RequestedBy}, id, 1)
		err = e.SetData(event.ApplicationJSON, d) // before the slice copies e
		return []event.Event{e}, err
	})
}
