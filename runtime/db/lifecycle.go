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

// Backend is what a function works on: a domain's connections
// (vaults.Backend, identity.Backend, …), or only the database
// ([Database]). B is its type; its methods are on *B.
type Backend[B any] interface {
	*B
	// Open connects a zero B from the function's configuration, reporting
	// every bad setting at once. The database is dialled lazily.
	Open(ctx context.Context, cfg map[string]string) error
	// Ready reports whether what the backend depends on answers.
	Ready(ctx context.Context) bool
	// Close sends what is still unsent and closes the connections.
	Close(ctx context.Context) error
}

// Lifecycle is the start and end of every function that works on a
// Backend. Embed it, usually as its domain's alias (vaults.Lifecycle is
// Lifecycle[vaults.Backend, *vaults.Backend]): Start opens the Backend,
// and the host calls Ready and Stop, which closes it. The host finds
// these methods by type assertion, so a function asserts them
// (var _ host.Starter = (*Function)(nil)): a misspelt override would
// otherwise be skipped without a word.
type Lifecycle[B any, P Backend[B]] struct {
	Backend *B
}

// Start opens the backend; on an error there is none.
func (l *Lifecycle[B, P]) Start(ctx context.Context, cfg map[string]string) error {
	b := new(B)
	if err := P(b).Open(ctx, cfg); err != nil {
		l.Backend = nil
		return err
	}
	l.Backend = b
	return nil
}

// Ready reports whether the backend is open and answers.
func (l *Lifecycle[B, P]) Ready(ctx context.Context) (bool, error) {
	return l.Backend != nil && P(l.Backend).Ready(ctx), nil
}

// Stop closes the backend.
func (l *Lifecycle[B, P]) Stop(ctx context.Context) error {
	if l.Backend == nil {
		return nil
	}
	return P(l.Backend).Close(ctx)
}

// Database is the Backend of a function that needs only the database
// (DATABASE_URL).
type Database struct {
	Pool *pgxpool.Pool
}

// Open opens the pool lazily.
func (d *Database) Open(ctx context.Context, cfg map[string]string) error {
	var err error
	d.Pool, err = OpenFromEnv(ctx, config.FromMap(cfg))
	return err
}

// Ready reports whether the database answers.
func (d *Database) Ready(ctx context.Context) bool {
	return d.Pool != nil && Ping(ctx, d.Pool) == nil
}

// Close closes the pool.
func (d *Database) Close(context.Context) error {
	if d.Pool != nil {
		d.Pool.Close()
	}
	return nil
}
