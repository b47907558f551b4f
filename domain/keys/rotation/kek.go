package rotation

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/keys"
	"github.com/skyflow-oss/skyflow/domain/vaults"
)

// RewrapKeysets moves every vault's stored keysets to k's current KEK,
// each in its own transaction under its row lock, without touching a
// record: the data keys stay the same, only their wrapping changes. k is
// usually a kek.Ring of the new KEK and the old ones. With all, keysets
// already under that KEK's id are rewrapped too (a Transit key rotated in
// place keeps its id). It returns how many vaults it rewrapped.
func RewrapKeysets(ctx context.Context, pool *pgxpool.Pool, k kek.KEK, vk kek.VaultKeys, all bool) (int, error) {
	r := keys.NewKeyring(pool, k).WithVaultKeys(vk)
	rows, err := pool.Query(ctx, `SELECT vault_id FROM vault_keysets WHERE $1 OR kek_id <> $2 ORDER BY vault_id`, all, k.ID())
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, err
	}
	for n, u := range ids {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			id := vaults.FormatID(u)
			_, ks, err := lockedKeys(ctx, tx, r, id)
			if err != nil {
				return err
			}
			w, err := r.Wrap(ctx, id, ks)
			if err != nil {
				return err
			}
			if err := w.Update(ctx, tx, u); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE vaults SET keys_version = keys_version + 1 WHERE id = $1`, u)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("vault %s: %w", vaults.FormatID(u), err)
		}
	}
	return len(ids), nil
}
