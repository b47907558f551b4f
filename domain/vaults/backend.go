package vaults

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

// Backend is what every vault function works on: the database, the vault
// registry on it, and the outbox its events leave through.
type Backend struct {
	Pool      *pgxpool.Pool
	Vaults    *Store
	Publisher *outbox.Publisher
}

// Connect builds a Backend from a function's configuration: DATABASE_URL,
// K_SINK, the key-encryption key (kek.FromEnv) and the vaults' own keys
// (kek.VaultKeysFromEnv). Every bad setting is
// reported at once, and the database is dialled lazily.
func Connect(ctx context.Context, cfg map[string]string) (*Backend, error) {
	env := config.FromMap(cfg)
	k, kekErr := kek.FromEnv(env)
	vk, vkErr := kek.VaultKeysFromEnv(env)
	pool, publisher, err := outbox.Connect(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(kekErr, vkErr); err != nil {
		pool.Close()
		return nil, err
	}
	return &Backend{Pool: pool, Vaults: NewStore(pool, k).WithVaultKeys(vk), Publisher: publisher}, nil
}

// Lifecycle is the start and end of a vault function. Embed it: Start
// connects the Backend, and Ready and Stop come with it.
type Lifecycle struct {
	Backend *Backend
}

// Start connects the backend.
func (l *Lifecycle) Start(ctx context.Context, cfg map[string]string) error {
	b, err := Connect(ctx, cfg)
	l.Backend = b
	return err
}

// Ready reports whether the database answers.
func (l *Lifecycle) Ready(ctx context.Context) (bool, error) {
	return l.Backend != nil && db.Ping(ctx, l.Backend.Pool) == nil, nil
}

// Stop sends the events still unsent, stores the data keys' encryption
// counts and closes the database pool.
func (l *Lifecycle) Stop(ctx context.Context) error {
	if l.Backend == nil {
		return nil
	}
	l.Backend.Publisher.Close(ctx)
	err := l.Backend.Vaults.Keyring().FlushUsage(ctx)
	l.Backend.Pool.Close()
	return err
}
