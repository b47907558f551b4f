package webhooks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// DefaultSecretOverlap is how long a rotated-out secret keeps signing
// beside the new one, so receivers can switch without dropping a delivery.
const DefaultSecretOverlap = 24 * time.Hour

// Page sizes of the lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Service runs the webhook management operations for one function.
type Service struct {
	*Backend
	Source        string // the CloudEvents source of the events it emits
	Now           func() time.Time
	SecretOverlap time.Duration
}

// NewService returns a Service on b whose events come from source.
func NewService(b *Backend, source string) *Service {
	return &Service{Backend: b, Source: source, Now: time.Now, SecretOverlap: DefaultSecretOverlap}
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// requireAdmin: endpoints are the platform's, managed by its
// administrators (the gateway checks the route's role too).
func requireAdmin(p request.Principal, what string) error {
	if !p.Has(policy.PlatformAdmin) {
		return apierr.PermissionDenied("only platform administrators (role %q) may %s", policy.PlatformAdmin, what)
	}
	return nil
}

// parseEndpointID reads the {webhookID} path parameter; anything but a
// UUID is an endpoint that does not exist.
func parseEndpointID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", notFound(id)
	}
	return u.String(), nil
}

func notFound(id string) error {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return apierr.NotFound("no webhook endpoint %q: list them with GET /v1/webhooks", id)
}

// normalizeVaultID accepts a vault id as the API shows it (32 hex digits)
// or as a UUID, and returns the 32-digit form events carry.
func normalizeVaultID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || (len(id) != 32 && len(id) != 36) {
		return "", apierr.InvalidArgument("vaultID must be a vault's id (32 hexadecimal digits)")
	}
	return strings.ReplaceAll(u.String(), "-", ""), nil
}

// Subscribe creates an endpoint owned by p and returns it with its secret,
// the only time the secret is shown.
func (s *Service) Subscribe(ctx context.Context, p request.Principal, req SubscribeRequest) (*NewEndpoint, error) {
	if err := requireAdmin(p, "subscribe webhooks"); err != nil {
		return nil, err
	}
	u, err := ParseURL(req.URL)
	if err != nil {
		return nil, err
	}
	patterns, err := NormalizePatterns(req.EventTypes)
	if err != nil {
		return nil, err
	}
	switch {
	case !utf8.ValidString(req.Description):
		return nil, apierr.InvalidArgument("description must be UTF-8 text")
	case utf8.RuneCountInString(req.Description) > MaxDescriptionLength:
		return nil, apierr.InvalidArgument("description is longer than %d characters", MaxDescriptionLength)
	}
	var vaultID *string
	if req.VaultID != "" {
		v, err := normalizeVaultID(req.VaultID)
		if err != nil {
			return nil, err
		}
		var exists bool
		if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM vaults WHERE id = $1::uuid)`, v).Scan(&exists); err != nil {
			return nil, dbError(err)
		}
		if !exists {
			return nil, apierr.InvalidArgument("vaultID names no vault: give the id of an existing vault, or leave it out for events of every vault")
		}
		vaultID = &v
	}
	if err := CheckDestination(ctx, s.Policy, s.Resolver, u); err != nil {
		return nil, err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, apierr.Unavailable("a secret could not be made; try again")
	}
	id := uuid.NewString()
	wrapped, err := s.wrap(secret, id, 1)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ep := Endpoint{ID: id, URL: u.String(), Description: req.Description, EventTypes: patterns, Status: StatusActive,
		Owner: p.ID, SecretVersion: 1, CreatedAt: now, UpdatedAt: now}
	if vaultID != nil {
		ep.VaultID = *vaultID
	}
	err = s.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints
			(id, url, description, event_types, vault_id, owner, secret, secret_version, kek_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $9)`,
			id, ep.URL, ep.Description, patterns, vaultID, p.ID, wrapped, s.KEK.ID(), now); err != nil {
			return nil, err
		}
		return []event.Event{NewEvent(s.Source, SubscribedType, p.ID, id, now, subscribedData{
			WebhookID: id, Owner: p.ID, URL: ep.URL, EventTypes: patterns, VaultID: ep.VaultID})}, nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	return &NewEndpoint{Endpoint: ep, Secret: secret.String()}, nil
}

const endpointColumns = `id::text, url, description, event_types, coalesce(vault_id, ''), status, owner, secret_version,
	previous_expires_at, failing_since, last_success_at, disabled_at, coalesce(disabled_reason, ''), created_at, updated_at`

func scanEndpoint(row pgx.Row, now time.Time) (*Endpoint, error) {
	var e Endpoint
	if err := row.Scan(&e.ID, &e.URL, &e.Description, &e.EventTypes, &e.VaultID, &e.Status, &e.Owner, &e.SecretVersion,
		&e.PreviousSecretExpiresAt, &e.FailingSince, &e.LastSuccessAt, &e.DisabledAt, &e.DisabledReason, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, err
	}
	if e.PreviousSecretExpiresAt != nil && !e.PreviousSecretExpiresAt.After(now) {
		e.PreviousSecretExpiresAt = nil // it no longer signs
	}
	for _, t := range []*time.Time{e.PreviousSecretExpiresAt, e.FailingSince, e.LastSuccessAt, e.DisabledAt, &e.CreatedAt, &e.UpdatedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return &e, nil
}

// Get returns one endpoint.
func (s *Service) Get(ctx context.Context, p request.Principal, id string) (*Endpoint, error) {
	if err := requireAdmin(p, "read webhooks"); err != nil {
		return nil, err
	}
	id, err := parseEndpointID(id)
	if err != nil {
		return nil, err
	}
	e, err := scanEndpoint(s.Pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id), s.now())
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(id)
	}
	return e, dbError(err)
}

// page is a checked page request: page_size and page_token, the keyset
// (created_at, id) of the last row of the previous page.
type page struct {
	size     int
	afterAt  time.Time
	afterID  string
	hasAfter bool
}

func parsePage(params url.Values, allowed ...string) (page, error) {
	allowed = append(allowed, "page_size", "page_token")
	pg := page{size: DefaultPageSize}
	for name, values := range params {
		if !slices.Contains(allowed, name) {
			return pg, apierr.InvalidArgument("unknown query parameter %q: use %s", name, strings.Join(allowed, ", "))
		}
		if len(values) > 1 {
			return pg, apierr.InvalidArgument("%s may be given once", name)
		}
	}
	if v := params.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return pg, apierr.InvalidArgument("page_size must be an integer between 1 and %d (default %d)", MaxPageSize, DefaultPageSize)
		}
		pg.size = n
	}
	if v := params.Get("page_token"); v != "" {
		at, id, ok := decodePageToken(v)
		if !ok {
			return pg, apierr.InvalidArgument("page_token is not a token this service issued: pass nextPageToken from the previous reply unchanged")
		}
		pg.afterAt, pg.afterID, pg.hasAfter = at, id, true
	}
	return pg, nil
}

func encodePageToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "k%d.%s", at.UnixMicro(), id))
}

func decodePageToken(tok string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 2 || raw[0] != 'k' {
		return time.Time{}, "", false
	}
	micros, id, ok := strings.Cut(string(raw[1:]), ".")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", false
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return time.Time{}, "", false
	}
	at := time.UnixMicro(n).UTC()
	if encodePageToken(at, id) != tok {
		return time.Time{}, "", false
	}
	return at, id, true
}

// List returns a page of endpoints, newest first, optionally only those of
// one status: never a secret.
func (s *Service) List(ctx context.Context, p request.Principal, params url.Values) (*Endpoints, error) {
	if err := requireAdmin(p, "list webhooks"); err != nil {
		return nil, err
	}
	pg, err := parsePage(params, "status")
	if err != nil {
		return nil, err
	}
	status := params.Get("status")
	if status != "" && status != StatusActive && status != StatusDisabled {
		return nil, apierr.InvalidArgument("status must be %s or %s", StatusActive, StatusDisabled)
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE ($1 = '' OR status = $1) AND (NOT $2 OR (created_at, id) < ($3, $4::uuid))
		ORDER BY created_at DESC, id DESC LIMIT $5`,
		status, pg.hasAfter, pg.afterAt, nullUUID(pg.afterID), pg.size+1)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	out := &Endpoints{Webhooks: []Endpoint{}}
	now := s.now()
	for rows.Next() {
		e, err := scanEndpoint(rows, now)
		if err != nil {
			return nil, dbError(err)
		}
		out.Webhooks = append(out.Webhooks, *e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	if len(out.Webhooks) > pg.size {
		out.Webhooks = out.Webhooks[:pg.size]
		last := out.Webhooks[pg.size-1]
		out.NextPageToken = encodePageToken(last.CreatedAt, last.ID)
	}
	return out, nil
}

func nullUUID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// Delete removes an endpoint with its delivery log; deliveries still
// pending are never attempted.
func (s *Service) Delete(ctx context.Context, p request.Principal, id string) (*Deleted, error) {
	if err := requireAdmin(p, "delete webhooks"); err != nil {
		return nil, err
	}
	id, err := parseEndpointID(id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var owner, u string
		err := tx.QueryRow(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 RETURNING owner, url`, id).Scan(&owner, &u)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, notFound(id)
		}
		if err != nil {
			return nil, err
		}
		return []event.Event{NewEvent(s.Source, DeletedType, p.ID, id, now, endpointData{WebhookID: id, Owner: owner, URL: u})}, nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	return &Deleted{ID: id, Deleted: true}, nil
}

// RotateSecret gives an endpoint a new secret, returned once; the previous
// one keeps signing beside it for SecretOverlap. A second rotation within
// the overlap drops the oldest secret.
func (s *Service) RotateSecret(ctx context.Context, p request.Principal, id string) (*RotatedSecret, error) {
	if err := requireAdmin(p, "rotate webhook secrets"); err != nil {
		return nil, err
	}
	id, err := parseEndpointID(id)
	if err != nil {
		return nil, err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, apierr.Unavailable("a secret could not be made; try again")
	}
	now := s.now()
	expires := now.Add(s.SecretOverlap)
	var out *RotatedSecret
	err = s.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var (
			version int
			owner   string
		)
		err := tx.QueryRow(ctx, `SELECT secret_version, owner FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, id).Scan(&version, &owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, notFound(id)
		}
		if err != nil {
			return nil, err
		}
		wrapped, err := s.wrap(secret, id, version+1)
		if err != nil {
			return nil, err
		}
		// The KEK id may change with the new secret; the previous one is
		// then under the old KEK until `skyflow kek rewrap` (the ring opens
		// both meanwhile).
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET
			previous_secret = secret, previous_secret_version = secret_version, previous_expires_at = $2,
			secret = $3, secret_version = secret_version + 1, kek_id = $4, updated_at = $5
			WHERE id = $1`, id, expires, wrapped, s.KEK.ID(), now); err != nil {
			return nil, err
		}
		out = &RotatedSecret{ID: id, Secret: secret.String(), SecretVersion: version + 1, PreviousSecretExpiresAt: expires}
		return []event.Event{NewEvent(s.Source, SecretRotatedType, p.ID, id, now, rotatedData{
			WebhookID: id, Owner: owner, SecretVersion: version + 1, PreviousExpiresAt: expires})}, nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	return out, nil
}

// Enable re-enables a disabled endpoint: its health starts afresh, and the
// deliveries that were pending when it was disabled resume. Events
// published while it was disabled are not delivered to it. Enabling an
// active endpoint changes nothing.
func (s *Service) Enable(ctx context.Context, p request.Principal, id string) (*Endpoint, error) {
	if err := requireAdmin(p, "enable webhooks"); err != nil {
		return nil, err
	}
	id, err := parseEndpointID(id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var owner, u, status string
		err := tx.QueryRow(ctx, `SELECT owner, url, status FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, id).Scan(&owner, &u, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, notFound(id)
		}
		if err != nil || status == StatusActive {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET status = 'active', disabled_at = NULL, disabled_reason = NULL,
			failing_since = NULL, consecutive_dead = 0, updated_at = $2 WHERE id = $1`, id, now); err != nil {
			return nil, err
		}
		return []event.Event{NewEvent(s.Source, EnabledType, p.ID, id, now, endpointData{WebhookID: id, Owner: owner, URL: u})}, nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	return s.Get(ctx, p, id)
}

// Test publishes a com.skyflow.webhook.tested event, which notify-webhook
// delivers to this endpoint only (whatever its event types, and even while
// it is disabled, to check it before enabling it again).
func (s *Service) Test(ctx context.Context, p request.Principal, id string) (*TestSent, error) {
	if err := requireAdmin(p, "test webhooks"); err != nil {
		return nil, err
	}
	id, err := parseEndpointID(id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out *TestSent
	err = s.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)`, id).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			return nil, notFound(id)
		}
		e := NewEvent(s.Source, TestedType, p.ID, id, now, endpointData{WebhookID: id})
		out = &TestSent{WebhookID: id, EventID: e.ID(), EventType: TestedType, MessageID: MessageID(id, e.Source(), e.ID())}
		return []event.Event{e}, nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	return out, nil
}

// ListDeliveries returns a page of an endpoint's delivery log, newest
// first, optionally only those in one status.
func (s *Service) ListDeliveries(ctx context.Context, p request.Principal, id string, params url.Values) (*Deliveries, error) {
	if err := requireAdmin(p, "read webhook deliveries"); err != nil {
		return nil, err
	}
	id, err := parseEndpointID(id)
	if err != nil {
		return nil, err
	}
	pg, err := parsePage(params, "status")
	if err != nil {
		return nil, err
	}
	status := params.Get("status")
	if status != "" && status != DeliveryPending && status != DeliverySucceeded && status != DeliveryDead {
		return nil, apierr.InvalidArgument("status must be %s, %s or %s", DeliveryPending, DeliverySucceeded, DeliveryDead)
	}
	var exists bool
	if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)`, id).Scan(&exists); err != nil {
		return nil, dbError(err)
	}
	if !exists {
		return nil, notFound(id)
	}
	rows, err := s.Pool.Query(ctx, `SELECT id::text, event_id, event_source, event_type, message_id, state, attempts,
		last_latency_ms, last_status, coalesce(last_error, ''), last_attempt_at, next_attempt_at, created_at, updated_at, finished_at
		FROM webhook_deliveries
		WHERE endpoint_id = $1 AND ($2 = '' OR state = $2) AND (NOT $3 OR (created_at, id) < ($4, $5::uuid))
		ORDER BY created_at DESC, id DESC LIMIT $6`,
		id, status, pg.hasAfter, pg.afterAt, nullUUID(pg.afterID), pg.size+1)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	out := &Deliveries{Deliveries: []Delivery{}}
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventSource, &d.EventType, &d.MessageID, &d.Status, &d.Attempts,
			&d.LatencyMs, &d.LastResponseCode, &d.LastError, &d.LastAttemptAt, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, &d.FinishedAt); err != nil {
			return nil, dbError(err)
		}
		for _, t := range []*time.Time{d.LastAttemptAt, d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, d.FinishedAt} {
			if t != nil {
				*t = t.UTC()
			}
		}
		out.Deliveries = append(out.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	if len(out.Deliveries) > pg.size {
		out.Deliveries = out.Deliveries[:pg.size]
		last := out.Deliveries[pg.size-1]
		out.NextPageToken = encodePageToken(last.CreatedAt, last.ID)
	}
	return out, nil
}
