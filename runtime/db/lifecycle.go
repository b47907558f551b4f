package db

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/config"
)

// OpenFromEnv reads DATABASE_URL into env (after whatever the caller read
// there, so every bad setting is reported at once) and opens a lazy pool.
func OpenFromEnv(ctx context.Context, env *config.Env) (*pgxpool.Pool, error) {
	url := env.Required("DATABASE_URL", "the PostgreSQL database")
	if err := env.Err(); err != nil {
		return nil, err
	}
	return Open(ctx, url)
}

// Lifecycle is the database half of a function. Embed it: its Ready and
// Stop become the function's, which the host calls, so a function only
// sets Pool in Start.
type Lifecycle struct {
	Pool *pgxpool.Pool
}

// Ready reports whether the database answers.
func (l *Lifecycle) Ready(ctx context.Context) (bool, error) {
	return l.Pool != nil && Ping(ctx, l.Pool) == nil, nil
}

// Stop closes the pool.
func (l *Lifecycle) Stop(ctx context.Context) error {
	if l.Pool != nil {
		l.Pool.Close()
	}
	return nil
}
