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

// Lifecycle is the database half of a function that publishes events.
// Embed it, as db.Lifecycle: Start sets Pool and Publisher (from
// [Connect]), and its Ready and Stop become the function's.
type Lifecycle struct {
	db.Lifecycle
	Publisher *Publisher
}

// Stop flushes the events still unsent, then closes the pool.
func (l *Lifecycle) Stop(ctx context.Context) error {
	if l.Publisher != nil {
		l.Publisher.Close(ctx)
	}
	return l.Lifecycle.Stop(ctx)
}
