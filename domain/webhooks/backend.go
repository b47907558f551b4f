// Package webhooks is the management of Skyflow's webhook endpoints:
// endpoints that receive the com.skyflow.* events matching their type
// patterns, subscribed, listed, enabled, tested and deleted by platform
// administrators, each with a signing secret (shown once, rotated with an
// overlap, kept wrapped by the key-encryption key), and the delivery log.
// It also names the events about endpoints and deliveries. The webhooks-*
// functions call it through [Service].
//
// Delivering events to the endpoints (signing, the retry schedule, the
// attempts, disabling an endpoint that keeps failing) is
// domain/webhooks/delivery, which notify-webhook calls.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// AllowedNetworksEnv names the networks webhooks may reach although they
// are internal (comma-separated CIDR prefixes; default none).
const AllowedNetworksEnv = "SKYFLOW_WEBHOOK_ALLOWED_NETWORKS"

// Backend is what every webhook function works on: the database, the
// outbox its events leave through, the key-encryption key that wraps the
// secrets, and the outbound address policy.
type Backend struct {
	Pool      *pgxpool.Pool
	Publisher *outbox.Publisher
	KEK       kek.KEK
	Policy    *safehttp.Policy
	Resolver  *net.Resolver // nil: the default resolver
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
// the key-encryption key (kek.FromEnv) and
// SKYFLOW_WEBHOOK_ALLOWED_NETWORKS. Every bad setting is reported at once,
// and the database is dialled lazily.
func (b *Backend) Open(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	policy, policyErr := safehttp.ParseNetworks(env.String(AllowedNetworksEnv, ""))
	k, kekErr := kek.FromEnv(env)
	pool, publisher, err := outbox.Connect(ctx, env)
	if err := errors.Join(err, policyErrorf(policyErr), kekErr); err != nil {
		if pool != nil {
			pool.Close()
		}
		return err
	}
	b.Pool, b.Publisher, b.KEK, b.Policy = pool, publisher, k, policy
	return nil
}

func policyErrorf(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", AllowedNetworksEnv, err)
}

// Ready reports whether the database answers.
func (b *Backend) Ready(ctx context.Context) bool {
	return db.Ping(ctx, b.Pool) == nil
}

// Close sends the events still unsent and closes the database pool.
func (b *Backend) Close(ctx context.Context) error {
	b.Publisher.Close(ctx)
	b.Pool.Close()
	return nil
}

// Lifecycle is the runtime's db.Lifecycle on a Backend: embedded, it gives
// a webhook function its Start, Ready and Stop.
type Lifecycle = db.Lifecycle[Backend, *Backend]

// secretAD binds a wrapped secret to its endpoint and version, so a
// wrapped secret copied to another endpoint or version does not open.
func secretAD(endpointID string, version int) []byte {
	return fmt.Appendf(nil, "skyflow/webhook-secret/%s/%d", endpointID, version)
}

// wrap encrypts a secret for storage.
func (b *Backend) wrap(s Secret, endpointID string, version int) ([]byte, error) {
	w, err := b.KEK.Encrypt(s, secretAD(endpointID, version))
	if err != nil {
		slog.Error("webhooks: the key-encryption key could not wrap a secret", "webhook_id", endpointID, "kek", b.KEK.ID(), "error", err)
		return nil, apierr.Unavailable("the key-encryption key is not available; try again")
	}
	return w, nil
}

// OpenSecret opens a stored secret: version's of endpoint endpointID.
func (b *Backend) OpenSecret(wrapped []byte, endpointID string, version int) (Secret, error) {
	s, err := b.KEK.Decrypt(wrapped, secretAD(endpointID, version))
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret %d of endpoint %s: unwrap: %w", version, endpointID, err)
	}
	return s, nil
}

// dbError keeps API errors and turns anything else into a 503 that names
// no value.
func dbError(err error) error {
	return db.APIError(err, "webhooks", "the webhook service is not available; try again")
}

// RewrapSecrets moves every stored webhook secret (current and previous)
// to k's current KEK, each endpoint in its own transaction under its row
// lock; the secrets themselves stay the same. With all, secrets already
// under that KEK's id are rewrapped too. It returns how many endpoints it
// rewrapped. `skyflow kek rewrap` runs it with the vault keysets.
func RewrapSecrets(ctx context.Context, pool *pgxpool.Pool, k kek.KEK, all bool) (int, error) {
	rows, err := pool.Query(ctx, `SELECT id::text FROM webhook_endpoints WHERE $1 OR kek_id <> $2 ORDER BY id`, all, k.ID())
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	b := &Backend{KEK: k}
	for n, id := range ids {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var (
				cur, prev    []byte
				ver, prevVer *int
			)
			if err := tx.QueryRow(ctx, `SELECT secret, secret_version, previous_secret, previous_secret_version
				FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, id).Scan(&cur, &ver, &prev, &prevVer); err != nil {
				return err
			}
			rewrap := func(w []byte, v int) ([]byte, error) {
				s, err := b.OpenSecret(w, id, v)
				if err != nil {
					return nil, err
				}
				return k.Encrypt(s, secretAD(id, v))
			}
			var err error
			if cur, err = rewrap(cur, *ver); err != nil {
				return err
			}
			if prev != nil && prevVer != nil {
				if prev, err = rewrap(prev, *prevVer); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET secret = $2, previous_secret = $3, kek_id = $4 WHERE id = $1`, id, cur, prev, k.ID())
			return err
		})
		if err != nil {
			return n, fmt.Errorf("webhook %s: %w", id, err)
		}
	}
	return len(ids), nil
}
