package rotation

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// MaxEncryptions is the use at which keys-rotate-due rotates a data key:
// half the 2^32 encryptions NIST SP 800-38D allows one AES-GCM key with
// random 96-bit nonces, leaving room for counts not yet flushed and for
// the writes until the next sweep.
const MaxEncryptions int64 = 1 << 31

// KeyPolicyUpdatedType: a vault's automatic rotation period changed.
const KeyPolicyUpdatedType = "com.skyflow.vault.keys.policy.updated"

// KeyPolicy is PUT /v1/management/vaults/{id}/keys/policy.
type KeyPolicy struct {
	// RotationPeriodDays: 1 to 3650, or 0 for no age-based rotation (use
	// still rotates the keys before AES-GCM's limit).
	RotationPeriodDays *int `json:"rotation_period_days"`
}

// keyPolicyChange is the data of a KeyPolicyUpdatedType event.
type keyPolicyChange struct {
	VaultID            string `json:"vault_id"`
	RotationPeriodDays int    `json:"rotation_period_days"`
}

// SetKeyPolicy sets how often the vault's keys rotate on their own, for a
// principal who may manage it, and returns the keys' status.
func (m *Manager) SetKeyPolicy(ctx context.Context, p request.Principal, id string, kp KeyPolicy) (*KeysStatus, error) {
	if kp.RotationPeriodDays == nil || *kp.RotationPeriodDays < 0 || *kp.RotationPeriodDays > 3650 {
		return nil, apierr.InvalidArgument("rotation_period_days is required: a whole number of days from 1 to 3650, or 0 to rotate by use only")
	}
	v, err := m.Vaults.Manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	days := *kp.RotationPeriodDays
	err = m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(ctx, `UPDATE vaults SET key_rotation_period = make_interval(days => $2), updated_at = now() WHERE id = $1`,
			v.ID, days); err != nil {
			return nil, err
		}
		e := m.event(KeyPolicyUpdatedType, p, v.ID, v.KeysVersion)
		if err := e.SetData(event.ApplicationJSON, keyPolicyChange{VaultID: v.ID, RotationPeriodDays: days}); err != nil {
			return nil, err
		}
		return []event.Event{e}, nil
	})
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	return m.Keys(ctx, p, v.ID)
}

// DueRotation is one vault keys-rotate-due rotated.
type DueRotation struct {
	VaultID string
	Reason  string // RotationAge or RotationUsage
	Keys    *KeysView
}

// errNotDue: another sweep rotated the vault first.
var errNotDue = errors.New("vaults: the rotation is no longer due")

// dueSQL finds primary versions past their vault's rotation period or
// encryption limit ($1); the reason is the usage one when both hold.
const dueSQL = `
	SELECT k.vault_id, CASE WHEN k.encryptions >= $1 THEN 'usage' ELSE 'age' END
	FROM vault_key_versions k JOIN vaults v ON v.id = k.vault_id
	WHERE k.retired_at IS NULL
	  AND (k.encryptions >= $1 OR (v.key_rotation_period > interval '0' AND k.created_at + v.key_rotation_period <= now()))`

// RotateDue rotates, as principal by, every vault whose primary data key
// is older than the vault's rotation period or has sealed maxEncryptions
// values. Each rotation is its own transaction, re-checked under the
// version's row lock, so sweeps running at once rotate a vault once.
func (m *Manager) RotateDue(ctx context.Context, by request.Principal, maxEncryptions int64) ([]DueRotation, error) {
	if err := m.recordMissingPrimaries(ctx); err != nil {
		return nil, err
	}
	rows, err := m.Pool.Query(ctx, dueSQL+` ORDER BY k.created_at LIMIT 1000`, maxEncryptions)
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	type due struct {
		vault  uuid.UUID
		reason string
	}
	dues, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
		var d due
		return d, r.Scan(&d.vault, &d.reason)
	})
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	var done []DueRotation
	for _, d := range dues {
		id := vaults.FormatID(d.vault)
		view, err := m.commitKeys(ctx, by, id, KeyRotatedType, func(ctx context.Context, tx pgx.Tx, id string) (*KeysView, error) {
			var vault uuid.UUID
			var reason string
			err := tx.QueryRow(ctx, dueSQL+` AND k.vault_id = $2 FOR UPDATE OF k SKIP LOCKED`, maxEncryptions, d.vault).Scan(&vault, &reason)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, errNotDue
			}
			if err != nil {
				return nil, err
			}
			return m.rotate(ctx, tx, id)
		}, rotationBecause(d.reason))
		if errors.Is(err, errNotDue) {
			continue
		}
		if err != nil {
			return done, err
		}
		done = append(done, DueRotation{VaultID: id, Reason: d.reason, Keys: view})
	}
	return done, nil
}

// KeyAges reports the age of the oldest primary data key and the highest
// use of one against maxEncryptions, over all vaults, for the metrics.
func (m *Manager) KeyAges(ctx context.Context, maxEncryptions int64) (oldest time.Duration, use float64, err error) {
	var seconds, most float64
	err = m.Pool.QueryRow(ctx, `
		SELECT coalesce(max(extract(epoch from now() - created_at)), 0), coalesce(max(encryptions), 0)
		FROM vault_key_versions WHERE retired_at IS NULL`).Scan(&seconds, &most)
	if err != nil {
		return 0, 0, vaults.Unavailable(err)
	}
	return time.Duration(seconds * float64(time.Second)), most / float64(maxEncryptions), nil
}

// recordMissingPrimaries gives vaults made before vault_key_versions their
// primary's row, dated from when their keys last changed.
func (m *Manager) recordMissingPrimaries(ctx context.Context) error {
	rows, err := m.Pool.Query(ctx, `
		SELECT v.id FROM vaults v
		WHERE NOT EXISTS (SELECT 1 FROM vault_key_versions k WHERE k.vault_id = v.id AND k.retired_at IS NULL)`)
	if err != nil {
		return vaults.Unavailable(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return vaults.Unavailable(err)
	}
	for _, u := range ids {
		v, err := m.Vaults.LoadUnchecked(ctx, vaults.FormatID(u))
		if err != nil {
			return err
		}
		if _, err := m.Pool.Exec(ctx, `
			INSERT INTO vault_key_versions (vault_id, key_id, created_at)
			SELECT $1, $2, updated_at FROM vault_keysets WHERE vault_id = $1
			ON CONFLICT (vault_id, key_id) DO UPDATE SET retired_at = NULL`, u, int64(v.Keys.PrimaryKeyID())); err != nil {
			return vaults.Unavailable(err)
		}
	}
	return nil
}

// recordRotation retires the vault's primary version and makes primary
// the new one, in the rotation's transaction.
func recordRotation(ctx context.Context, tx pgx.Tx, u uuid.UUID, previous, primary uint32) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO vault_key_versions (vault_id, key_id, retired_at) VALUES ($1, $2, now())
		ON CONFLICT (vault_id, key_id) DO UPDATE SET retired_at = now()`, u, int64(previous)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO vault_key_versions (vault_id, key_id) VALUES ($1, $2)`, u, int64(primary))
	return err
}
