package identity

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// GrantType is the only grant the token endpoint takes (RFC 7523).
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

func subject(principal string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: principal} }

// CreateServiceAccount makes a service account with a new key pair and
// returns its credentials.json; the private key is in it and nowhere else.
func (s *Service) CreateServiceAccount(ctx context.Context, p request.Principal, req ServiceAccountRequest) (*credentials.Credentials, error) {
	if err := requireAdmin(p, "create service accounts"); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return nil, apierr.InvalidArgument("name must be 1 to 100 characters")
	}
	roles, err := checkRoles(req.Roles)
	if err != nil {
		return nil, err
	}
	clientID := credentials.NewClientID()
	creds, pub, err := credentials.NewKeyPair(clientID, name, s.Settings.TokenURI)
	if err != nil {
		return nil, apierr.Internal("a key pair could not be made")
	}
	err = s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO service_accounts (client_id, name, created_by) VALUES ($1, $2, $3)`, clientID, name, p.ID); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO service_account_keys (key_id, client_id, public_key) VALUES ($1, $2, $3)`, creds.KeyID, clientID, pub); err != nil {
			return nil, err
		}
		if err := setRoles(ctx, tx, "sa:"+clientID, roles, p.ID); err != nil {
			return nil, err
		}
		return []event.Event{s.event(ServiceAccountCreatedType, p.ID, "sa:"+clientID, map[string]any{"client_id": clientID, "roles": roles})}, nil
	})
	if err != nil {
		return nil, err
	}
	return &creds, nil
}

// ListServiceAccounts lists every service account, revoked ones included.
func (s *Service) ListServiceAccounts(ctx context.Context, p request.Principal) (*ServiceAccounts, error) {
	if err := requireAdmin(p, "list service accounts"); err != nil {
		return nil, err
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT s.client_id, s.name, s.created_by, s.created_at, s.revoked_at,
		       coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL), '{}')
		FROM service_accounts s LEFT JOIN role_assignments r ON r.principal = 'sa:' || s.client_id
		GROUP BY s.client_id ORDER BY s.created_at, s.client_id`)
	if err != nil {
		return nil, dbError(err)
	}
	out := &ServiceAccounts{ServiceAccounts: []ServiceAccount{}}
	var a ServiceAccount
	_, err = pgx.ForEachRow(rows, []any{&a.ClientID, &a.Name, &a.CreatedBy, &a.CreatedAt, &a.RevokedAt, &a.Roles}, func() error {
		out.ServiceAccounts = append(out.ServiceAccounts, a)
		return nil
	})
	return out, dbError(err)
}

// RevokeServiceAccount revokes a service account, its keys and its API
// keys: no new access token can be had for it. Tokens already issued
// expire within 15 minutes.
func (s *Service) RevokeServiceAccount(ctx context.Context, p request.Principal, clientID string) (*ServiceAccount, error) {
	if err := requireAdmin(p, "revoke service accounts"); err != nil {
		return nil, err
	}
	err := s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		tag, err := tx.Exec(ctx, `UPDATE service_accounts SET revoked_at = now() WHERE client_id = $1 AND revoked_at IS NULL`, clientID)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, apierr.NotFound("no live service account %q", clientID)
		}
		if _, err := tx.Exec(ctx, `UPDATE service_account_keys SET revoked_at = now() WHERE client_id = $1 AND revoked_at IS NULL`, clientID); err != nil {
			return nil, err
		}
		keys, err := revokeAPIKeys(ctx, tx, "sa:"+clientID)
		if err != nil {
			return nil, err
		}
		events := []event.Event{s.event(ServiceAccountRevokedType, p.ID, "sa:"+clientID, map[string]string{"client_id": clientID})}
		for _, id := range keys {
			events = append(events, s.event(APIKeyRevokedType, p.ID, id, map[string]string{"key_id": id, "principal": "sa:" + clientID}))
		}
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	s.markChanged(ctx, "sa:"+clientID)
	list, err := s.ListServiceAccounts(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, a := range list.ServiceAccounts {
		if a.ClientID == clientID {
			return &a, nil
		}
	}
	return nil, apierr.NotFound("no service account %q", clientID)
}

// ExchangeToken trades a service account's signed assertion for an access
// token with the account's roles, narrowed by scope ("role:<id> …") when
// given, and the assertion's ctx claim carried through. Each assertion
// works once.
func (s *Service) ExchangeToken(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	if req.GrantType != GrantType {
		return nil, apierr.InvalidArgument("grant_type must be %s", GrantType)
	}
	if req.Assertion == "" {
		return nil, apierr.InvalidArgument("assertion is required: a JWT signed with the private key of your credentials.json")
	}
	wanted, err := credentials.ParseScope(req.Scope)
	if err != nil {
		return nil, err
	}
	claims, err := credentials.VerifyAssertion(ctx, req.Assertion, s.Settings.TokenURI, s.Now(), s.publicKey)
	if err != nil {
		return nil, err
	}
	if err := s.Replay.Use(ctx, claims, req.Assertion); err != nil {
		return nil, err
	}
	principal := "sa:" + claims.Issuer
	roles, err := rolesOf(ctx, s.Pool, principal)
	if err != nil {
		return nil, dbError(err)
	}
	if len(wanted) > 0 {
		held := map[string]bool{}
		for _, r := range roles {
			held[r] = true
		}
		for _, r := range wanted {
			if !held[r] {
				return nil, apierr.PermissionDenied("scope asks for role %q, which this service account does not hold", r)
			}
		}
		roles = wanted
	}
	tok, _, err := s.Keys.Issue(ctx, signing.Claims{RegisteredClaims: subject(principal), Roles: roles, Ctx: claims.Ctx, Kind: "service_account"}, s.Settings.AccessTTL)
	if err != nil {
		return nil, dbError(err)
	}
	return &TokenResponse{AccessToken: tok, TokenType: "Bearer"}, nil
}

// publicKey finds a live key of a live service account.
func (s *Service) publicKey(ctx context.Context, keyID string) (string, *rsa.PublicKey, error) {
	var clientID string
	var der []byte
	err := s.Pool.QueryRow(ctx, `
		SELECT k.client_id, k.public_key FROM service_account_keys k JOIN service_accounts a USING (client_id)
		WHERE k.key_id = $1 AND k.revoked_at IS NULL AND a.revoked_at IS NULL`, keyID).Scan(&clientID, &der)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, credentials.ErrKeyNotFound
	}
	if err != nil {
		return "", nil, dbError(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	rsaPub, ok := pub.(*rsa.PublicKey)
	if err != nil || !ok {
		return "", nil, apierr.Internal("a stored public key is malformed")
	}
	return clientID, rsaPub, nil
}
