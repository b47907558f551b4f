package identity

import (
	"context"
	"regexp"
	"sort"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// roleID is the shape of a role id, as vault policies name them.
var roleID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

func checkRoles(roles []string) ([]string, error) {
	if len(roles) > 64 {
		return nil, apierr.InvalidArgument("roles may hold at most 64 role ids")
	}
	seen := map[string]bool{}
	out := []string{}
	for _, r := range roles {
		if !roleID.MatchString(r) {
			return nil, apierr.InvalidArgument("roles: %q is not a role id: 1–128 letters, digits or _ . : -", r)
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// rolesOf returns the roles a principal holds.
func rolesOf(ctx context.Context, q querier, principal string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT role FROM role_assignments WHERE principal = $1 ORDER BY role`, principal)
	if err != nil {
		return nil, err
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if roles == nil {
		roles = []string{}
	}
	return roles, err
}

// requireAdmin refuses anyone but a platform administrator.
func requireAdmin(p request.Principal, what string) error {
	if !p.Has(policy.PlatformAdmin) {
		return apierr.PermissionDenied("only platform administrators (role %q) may %s", policy.PlatformAdmin, what)
	}
	return nil
}

// SetRoles replaces the roles of a user ("user:<id>") or service account
// ("sa:<client id>"). Tokens already issued keep their roles until they
// expire (at most 15 minutes).
func (s *Service) SetRoles(ctx context.Context, p request.Principal, principal string, req RolesRequest) (map[string]any, error) {
	if err := requireAdmin(p, "assign roles"); err != nil {
		return nil, err
	}
	roles, err := checkRoles(req.Roles)
	if err != nil {
		return nil, err
	}
	err = s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		if err := s.principalExists(ctx, tx, principal); err != nil {
			return nil, err
		}
		if err := setRoles(ctx, tx, principal, roles, p.ID); err != nil {
			return nil, err
		}
		return []event.Event{s.event(RolesUpdatedType, p.ID, principal, map[string]any{"principal": principal, "roles": roles})}, nil
	})
	if err != nil {
		return nil, err
	}
	s.markChanged(ctx, principal)
	return map[string]any{"principal": principal, "roles": roles}, nil
}

func setRoles(ctx context.Context, tx pgx.Tx, principal string, roles []string, by string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM role_assignments WHERE principal = $1`, principal); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO role_assignments (principal, role, granted_by) SELECT $1, unnest($2::text[]), $3`, principal, roles, by)
	return err
}

// principalExists checks that a principal id names a user or a live
// service account.
func (s *Service) principalExists(ctx context.Context, tx pgx.Tx, principal string) error {
	var ok bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM users WHERE 'user:' || id::text = $1)
		    OR EXISTS (SELECT 1 FROM service_accounts WHERE 'sa:' || client_id = $1 AND revoked_at IS NULL)`, principal).Scan(&ok)
	if err != nil {
		return err
	}
	if !ok {
		return apierr.NotFound("no user or service account %q", principal)
	}
	return nil
}
