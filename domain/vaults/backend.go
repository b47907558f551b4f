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

// Connect builds a Backend from a function's configuration (see Open).
func Connect(ctx context.Context, cfg map[string]string) (*Backend, error) {
	b := new(Backend)
	if err := b.Open(ctx, cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// Open connects b from a function's configuration: DATABASE_URL, K_SINK,
// the key-encryption key (kek.FromEnv) and the vaults' own keys
// (kek.VaultKeysFromEnv). Every bad setting is reported at once, and the
// database is dialled lazily.
func (b *Backend) Open(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	k, kekErr := kek.FromEnv(env)
	vk, vkErr := kek.VaultKeysFromEnv(env)
	pool, publisher, err := outbox.Connect(ctx, env)
	if err != nil {
		return err
	}
	if err := errors.Join(kekErr, vkErr); err != nil {
		pool.Close()
		return err
	}
	b.Pool, b.Vaults, b.Publisher = pool, NewStore(pool, k).WithVaultKeys(vk), publisher
	return nil
}

// Ready reports whether the database answers.
func (b *Backend) Ready(ctx context.Context) bool {
	return db.Ping(ctx, b.Pool) == nil
}

// Close sends the events still unsent, stores the data keys' encryption
// counts and closes the database pool.
func (b *Backend) Close(ctx context.Context) error {
	b.Publisher.Close(ctx)
	err := b.Vaults.Keyring().FlushUsage(ctx)
	b.Pool.Close()
	return err
}

// Lifecycle is the runtime's db.Lifecycle on a Backend: embedded, it gives
// a vault function its Start, Ready and Stop.
type Lifecycle = db.Lifecycle[Backend, *Backend]
