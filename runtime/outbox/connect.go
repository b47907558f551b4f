package outbox

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// Connect is the start of every function that publishes events: it reads
// DATABASE_URL and K_SINK into env (after whatever the caller read there,
// so every bad setting is reported at once) and returns a lazy pool and a
// Publisher on it that logs to slog.Default and counts in metrics.Registry.
func Connect(ctx context.Context, env *config.Env, opts ...Option) (*pgxpool.Pool, *Publisher, error) {
	sink := env.URL("K_SINK", "http", "https")
	if sink == nil {
		env.Required("K_SINK", "the broker ingress that events are sent to")
	}
	pool, err := db.OpenFromEnv(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	opts = append([]Option{WithLogger(slog.Default()), WithRegisterer(skymetrics.Registry)}, opts...)
	publisher, err := NewPublisher(pool, sink.String(), opts...)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, publisher, nil
}

// Backend is the db.Backend of a function that publishes events and
// needs nothing else: the database and a Publisher on it.
type Backend struct {
	Pool      *pgxpool.Pool
	Publisher *Publisher
}

// Open connects (lazily): DATABASE_URL and K_SINK.
func (b *Backend) Open(ctx context.Context, cfg map[string]string) error {
	var err error
	b.Pool, b.Publisher, err = Connect(ctx, config.FromMap(cfg))
	return err
}

// Ready reports whether the database answers.
func (b *Backend) Ready(ctx context.Context) bool {
	return b.Pool != nil && db.Ping(ctx, b.Pool) == nil
}

// Close sends the events still unsent, then closes the pool.
func (b *Backend) Close(ctx context.Context) error {
	if b.Publisher != nil {
		b.Publisher.Close(ctx)
	}
	if b.Pool != nil {
		b.Pool.Close()
	}
	return nil
}

// Lifecycle is the runtime's db.Lifecycle on a Backend.
type Lifecycle = db.Lifecycle[Backend, *Backend]
