package signing

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
)

// RewrapKeys moves every stored signing key to k's current KEK, each in
// its own transaction under its row lock; the keys themselves stay the
// same. With all, keys already under that KEK's id are rewrapped too (a
// Transit key rotated in place). It returns how many it rewrapped.
func RewrapKeys(ctx context.Context, pool *pgxpool.Pool, k kek.KEK, all bool) (int, error) {
	rows, err := pool.Query(ctx, `SELECT kid FROM signing_keys WHERE $1 OR kek_id <> $2 ORDER BY kid`, all, k.ID())
	if err != nil {
		return 0, err
	}
	kids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	for n, kid := range kids {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var wrapped []byte
			if err := tx.QueryRow(ctx, `SELECT private_key FROM signing_keys WHERE kid = $1 FOR UPDATE`, kid).Scan(&wrapped); err != nil {
				return err
			}
			der, err := k.Decrypt(wrapped, associatedData(kid))
			if err != nil {
				return err
			}
			if wrapped, err = k.Encrypt(der, associatedData(kid)); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE signing_keys SET private_key = $2, kek_id = $3 WHERE kid = $1`, kid, wrapped, k.ID())
			return err
		})
		if err != nil {
			return n, fmt.Errorf("signing key %s: %w", kid, err)
		}
	}
	return len(kids), nil
}
