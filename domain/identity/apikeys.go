package identity

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// CreateAPIKey makes an API key that acts as a service account. The key
// is in the answer and nowhere else: only its SHA-256 is stored.
func (s *Service) CreateAPIKey(ctx context.Context, p request.Principal, req APIKeyRequest) (*NewAPIKey, error) {
	if err := requireAdmin(p, "create API keys"); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return nil, apierr.InvalidArgument("name must be 1 to 100 characters")
	}
	key, prefix, hash := credentials.NewAPIKey()
	k := &NewAPIKey{Key: key, APIKey: APIKey{
		ID: uuid.NewString(), Prefix: prefix, Name: name, Principal: "sa:" + req.ServiceAccountID, CreatedBy: p.ID, CreatedAt: s.Now().UTC(),
	}}
	err := s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var live bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM service_accounts WHERE client_id = $1 AND revoked_at IS NULL)`, req.ServiceAccountID).Scan(&live); err != nil {
			return nil, err
		}
		if !live {
			return nil, apierr.NotFound("serviceAccountID: no live service account %q", req.ServiceAccountID)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO api_keys (id, prefix, key_hash, principal, name, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Prefix, hash, k.Principal, name, p.ID, k.CreatedAt); err != nil {
			return nil, err
		}
		return []event.Event{s.event(APIKeyCreatedType, p.ID, k.ID, map[string]string{"key_id": k.ID, "principal": k.Principal})}, nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ListAPIKeys lists every key: prefixes and metadata, never a key.
func (s *Service) ListAPIKeys(ctx context.Context, p request.Principal) (*APIKeys, error) {
	if err := requireAdmin(p, "list API keys"); err != nil {
		return nil, err
	}
	rows, err := s.Pool.Query(ctx, `SELECT id, prefix, name, principal, created_by, created_at, revoked_at FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, dbError(err)
	}
	out := &APIKeys{APIKeys: []APIKey{}}
	var k APIKey
	_, err = pgx.ForEachRow(rows, []any{&k.ID, &k.Prefix, &k.Name, &k.Principal, &k.CreatedBy, &k.CreatedAt, &k.RevokedAt}, func() error {
		out.APIKeys = append(out.APIKeys, k)
		return nil
	})
	return out, dbError(err)
}

// RevokeAPIKey revokes a key at once: after the commit, the key's
// principal is marked changed, which every gateway checks before it trusts
// its cache.
func (s *Service) RevokeAPIKey(ctx context.Context, p request.Principal, id string) (map[string]any, error) {
	if err := requireAdmin(p, "revoke API keys"); err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, apierr.NotFound("no live API key %q", id)
	}
	var principal string
	err := s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		err := tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING principal`, id).Scan(&principal)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, apierr.NotFound("no live API key %q", id)
		}
		if err != nil {
			return nil, err
		}
		return []event.Event{s.event(APIKeyRevokedType, p.ID, id, map[string]string{"key_id": id, "principal": principal})}, nil
	})
	if err != nil {
		return nil, err
	}
	s.markChanged(ctx, principal)
	return map[string]any{"id": id, "revoked": true}, nil
}

func revokeAPIKeys(ctx context.Context, tx pgx.Tx, principal string) ([]string, error) {
	rows, err := tx.Query(ctx, `UPDATE api_keys SET revoked_at = now() WHERE principal = $1 AND revoked_at IS NULL RETURNING id::text`, principal)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Authenticate resolves an API key to the principal it acts as, with that
// principal's roles; a revoked, unknown or malformed key is refused with
// one message. The gateway asks this.
func (b *Backend) Authenticate(ctx context.Context, key string) (request.Principal, error) {
	refused := apierr.Unauthenticated("the API key is not valid")
	hash, err := credentials.HashAPIKey(key)
	if err != nil {
		return request.Principal{}, refused
	}
	// One round trip: the gateway asks this on every request with a key.
	var (
		principal string
		revoked   *time.Time
		roles     []string
	)
	err = b.Pool.QueryRow(ctx, `
		SELECT k.principal, coalesce(k.revoked_at, a.revoked_at),
		       coalesce((SELECT array_agg(r.role ORDER BY r.role) FROM role_assignments r WHERE r.principal = k.principal), '{}')
		FROM api_keys k JOIN service_accounts a ON 'sa:' || a.client_id = k.principal
		WHERE k.key_hash = $1`, hash).Scan(&principal, &revoked, &roles)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && revoked != nil) {
		return request.Principal{}, refused
	}
	if err != nil {
		return request.Principal{}, dbError(err)
	}
	return request.Principal{ID: principal, Roles: roles}, nil
}
