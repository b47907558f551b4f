package push

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// Backend is what the push-* functions work on: the subscriptions in the
// database, and the address policy their endpoints must pass.
type Backend struct {
	Pool   *pgxpool.Pool
	Store  *Store
	Policy *safehttp.Policy // the push endpoints' address policy
}

// Open reads DATABASE_URL and SKYFLOW_PUSH_ALLOWED_NETWORKS (optional)
// and opens the database lazily.
func (b *Backend) Open(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	policy, netErr := safehttp.ParseNetworks(env.String(AllowedNetworksEnv, ""))
	if netErr != nil {
		netErr = errors.New("configuration: " + AllowedNetworksEnv + ": " + netErr.Error())
	}
	pool, err := db.OpenFromEnv(ctx, env)
	if err = errors.Join(err, netErr); err != nil {
		if pool != nil {
			pool.Close()
		}
		return err
	}
	b.Pool, b.Store, b.Policy = pool, &Store{Pool: pool}, policy
	return nil
}

// Ready reports whether the database answers.
func (b *Backend) Ready(ctx context.Context) bool {
	return db.Ping(ctx, b.Pool) == nil
}

// Close closes the pool.
func (b *Backend) Close(context.Context) error {
	b.Pool.Close()
	return nil
}

// Lifecycle is the runtime's db.Lifecycle on a Backend: embedded, it gives
// a push-* function its Start, Ready and Stop.
type Lifecycle = db.Lifecycle[Backend, *Backend]
