// Package identity is Skyflow's user service: user accounts (register,
// verify email, log in, refresh, log out, profile, notification
// preferences), service accounts and their token exchange (the Skyflow
// way: a signed JWT assertion for an access token), API keys, and the
// roles principals hold. Each operation is a method the users-*, auth-*,
// serviceaccounts-* and apikeys-* functions call after decoding their
// event.
//
// Secrets are never stored or sent in the clear: passwords are argon2id
// hashes (domain/identity/passwords), refresh and verification tokens and API keys
// SHA-256 hashes of random values, service-account private keys are
// returned once and never kept, and the signing keys are wrapped by the
// key-encryption key (domain/identity/signing). Events carry identifiers only.
package identity

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/domain/identity/throttle"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

// Settings are the service's configuration.
type Settings struct {
	Issuer, Audience string        // of access tokens
	TokenURI         string        // the service-account token endpoint, the aud of assertions
	AccessTTL        time.Duration // access token lifetime (≤ 15 min)
	RefreshTTL       time.Duration // refresh token lifetime
	RedisPrefix      string
	// Login throttling per account and per client address (default
	// AccountPolicy and AddressPolicy).
	Account, Address throttle.Policy
}

// Backend is what every identity function works on.
type Backend struct {
	Pool      *pgxpool.Pool
	Redis     redis.UniversalClient
	Publisher *outbox.Publisher
	Keys      *signing.Keyring
	Throttle  *throttle.Limiter
	Replay    *credentials.ReplayGuard
	Settings  Settings
}

// Login throttling: per account, slow down after 3 failures and lock for
// 15 minutes after 10 in 15 minutes; per client address, the same with
// room for a shared NAT.
var (
	AccountPolicy = throttle.Policy{FreeFailures: 3, Delay: 250 * time.Millisecond, MaxDelay: 4 * time.Second, LockAfter: 10, LockFor: 15 * time.Minute, Window: 15 * time.Minute}
	AddressPolicy = throttle.Policy{FreeFailures: 10, Delay: 250 * time.Millisecond, MaxDelay: 4 * time.Second, LockAfter: 50, LockFor: 15 * time.Minute, Window: 15 * time.Minute}
)

// New assembles a Backend from its parts.
func New(pool *pgxpool.Pool, rdb redis.UniversalClient, publisher *outbox.Publisher, k kek.KEK, s Settings) *Backend {
	if s.AccessTTL == 0 {
		s.AccessTTL = 15 * time.Minute
	}
	if s.RefreshTTL == 0 {
		s.RefreshTTL = 30 * 24 * time.Hour
	}
	if s.Account == (throttle.Policy{}) {
		s.Account = AccountPolicy
	}
	if s.Address == (throttle.Policy{}) {
		s.Address = AddressPolicy
	}
	return &Backend{
		Pool: pool, Redis: rdb, Publisher: publisher, Settings: s,
		Keys:     signing.NewKeyring(pool, k, signing.Options{Issuer: s.Issuer, Audience: s.Audience, TTL: s.AccessTTL}),
		Throttle: throttle.New(rdb, s.RedisPrefix, s.Account, s.Address),
		Replay:   credentials.NewReplayGuard(rdb, s.RedisPrefix),
	}
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
// REDIS_URL, the key-encryption key (kek.FromEnv) and
// SKYFLOW_TOKEN_ISSUER, SKYFLOW_TOKEN_AUDIENCE, SKYFLOW_TOKEN_URI.
func (b *Backend) Open(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	s := Settings{
		Issuer:      env.String("SKYFLOW_TOKEN_ISSUER", "skyflow"),
		Audience:    env.String("SKYFLOW_TOKEN_AUDIENCE", "skyflow-api"),
		TokenURI:    env.Required("SKYFLOW_TOKEN_URI", "the service-account token endpoint (https://…/v1/auth/sa/oauth/token)"),
		RedisPrefix: env.String("REDIS_PREFIX", "skyflow:"),
	}
	redisURL := env.Required("REDIS_URL", "the Redis server (redis://…)")
	k, kekErr := kek.FromEnv(env)
	pool, publisher, err := outbox.Connect(ctx, env)
	if err != nil {
		return err
	}
	if kekErr != nil {
		pool.Close()
		return kekErr
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		// Required only checked that it is set. The value is not echoed:
		// a Redis URL may carry a password.
		pool.Close()
		return errors.New("configuration: REDIS_URL: is not a Redis URL (redis://host:port/db, rediss://… or unix://…)")
	}
	*b = *New(pool, redis.NewClient(opts), publisher, k, s)
	return nil
}

// Ready reports whether the database and Redis answer.
func (b *Backend) Ready(ctx context.Context) bool {
	return db.Ping(ctx, b.Pool) == nil && b.Redis.Ping(ctx).Err() == nil
}

// Close sends the events still unsent and closes the connections.
func (b *Backend) Close(ctx context.Context) error {
	b.Publisher.Close(ctx)
	b.Pool.Close()
	b.Redis.Close()
	return nil
}

// Lifecycle is the runtime's db.Lifecycle on a Backend: embedded, it gives
// an identity function its Start, Ready and Stop.
type Lifecycle = db.Lifecycle[Backend, *Backend]
