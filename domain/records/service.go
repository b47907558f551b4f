// Package records carries out the Data API: insert, get, update, delete,
// batch, detokenize, tokenize and query on a vault's records. Each
// operation is one method of [Service], which the records-* and tokens-*
// functions call after decoding their event, so that the batch operation
// runs exactly the code of the single operations.
//
// Every operation loads the vault for the principal (a vault the
// principal's roles do not appear in does not exist for it), checks the
// vault's policy, and does all its writes in one PostgreSQL transaction
// together with its outbox events: a failure writes nothing. Values are
// encrypted per cell with the vault's keys and associated data naming the
// vault, table, column and record; lookups by value use blind indexes, so
// no operation decrypts more than the cells it returns.
package records

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Service runs Data API operations on a vault backend.
type Service struct {
	*vaults.Backend
	// Source is the CloudEvents source of the events the service emits:
	// the calling function's.
	Source string
}

// New returns a Service on b whose events come from source.
func New(b *vaults.Backend, source string) *Service { return &Service{Backend: b, Source: source} }

// Event types the service emits. Each has a schema in eventing/catalog.
const (
	// AccessType is the audit event of every operation: who did what to
	// which vault, table, columns and records, at which redaction, and
	// whether it was allowed. Never a value.
	AccessType  = "com.skyflow.audit.vault.accessed"
	CreatedType = "com.skyflow.vault.record.created"
	UpdatedType = "com.skyflow.vault.record.updated"
	DeletedType = "com.skyflow.vault.record.deleted"
)

// call is one operation for one principal on one vault: what it has
// learnt for the audit event, and the events it will emit.
type call struct {
	s      *Service
	p      request.Principal
	v      *vaults.Vault
	action string
	access access
	events []event.Event
	// subjects are the data-subject keys the call has looked up, by
	// identifier: a request of 25 records of one subject looks it up once.
	subjects map[string]*subject
}

// access is the data of an AccessType event.
type access struct {
	Action    string   `json:"action"`
	Result    string   `json:"result"`
	VaultID   string   `json:"vault_id"`
	Table     string   `json:"table,omitempty"`
	Columns   []string `json:"columns,omitempty"`
	RecordIDs []string `json:"record_ids,omitempty"`
	Redaction string   `json:"redaction,omitempty"`
	Principal string   `json:"principal"`
}

// begin loads the vault for the principal and starts a call.
func (s *Service) begin(ctx context.Context, p request.Principal, vaultID, action string) (*call, error) {
	c := &call{s: s, p: p, action: action, access: access{Action: action, VaultID: vaultID, Principal: p.ID}}
	v, err := s.Vaults.Load(ctx, vaultID, p)
	if err != nil {
		c.deny(ctx, err)
		return nil, err
	}
	c.v, c.access.VaultID = v, v.ID
	return c, nil
}

// table finds a table of the vault by name.
func (c *call) table(name string) (*schema.Table, error) {
	if name == "" {
		return nil, apierr.InvalidArgument("a table name is required")
	}
	t, ok := c.v.Schema.Table(name)
	if !ok {
		return nil, apierr.NotFound("Table %q not found in the vault. Check the table name against the vault's schema.", name)
	}
	return t, nil
}

// require checks a right of the vault's policy.
func (c *call) require(action policy.Action, table string) error {
	if c.v.Policy.Can(c.p.Roles, action, table) {
		return nil
	}
	if table == "" {
		return apierr.PermissionDenied("your roles may not %s in this vault", action)
	}
	return apierr.PermissionDenied("your roles may not %s records of table %q", action, table)
}

// commit runs fn in one transaction with the call's events and its audit
// event: both are written or neither is. A failure is audited on its own
// when it was a refusal.
func (c *call) commit(ctx context.Context, fn func(tx pgx.Tx) error) error {
	err := c.s.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		c.events = c.events[:0]
		if err := fn(tx); err != nil {
			return nil, err
		}
		c.access.Result = "allowed"
		return append(c.events, c.event(AccessType, c.access)), nil
	})
	if err != nil {
		err = dbError(err)
		c.deny(ctx, err)
	}
	return err
}

// deny records a refused operation (401, 403 or 404) in the audit log:
// who tried, on what. Other failures changed nothing and are not audited.
func (c *call) deny(ctx context.Context, err error) {
	var ae *apierr.Error
	if !errors.As(err, &ae) || (ae.HTTPCode != 401 && ae.HTTPCode != 403 && ae.HTTPCode != 404) {
		return
	}
	a := c.access
	a.Result = "denied"
	if perr := c.s.Publisher.Transact(ctx, func(pgx.Tx) ([]event.Event, error) {
		return []event.Event{c.event(AccessType, a)}, nil
	}); perr != nil {
		slog.ErrorContext(ctx, "a refused request could not be audited", "error", perr)
	}
}

// event makes an event of the call, keyed by vault so that one vault's
// events stay in order.
func (c *call) event(typ string, data any) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(c.s.Source)
	e.SetType(typ)
	e.SetTime(time.Now())
	e.SetExtension("principal", c.p.ID)
	e.SetExtension("action", c.action)
	if c.access.VaultID != "" {
		e.SetExtension("vaultid", c.access.VaultID)
		e.SetExtension("partitionkey", c.access.VaultID)
	}
	_ = e.SetData(event.ApplicationJSON, data)
	return e
}

// recordEvent queues a domain event about one record.
func (c *call) recordEvent(typ, table string, id uuid.UUID) {
	e := c.event(typ, recordChange{VaultID: c.v.ID, Table: table, SkyflowID: id.String()})
	e.SetSubject(id.String())
	c.events = append(c.events, e)
}

// recordChange is the data of the record.created/updated/deleted events:
// identifiers only.
type recordChange struct {
	VaultID   string `json:"vault_id"`
	Table     string `json:"table"`
	SkyflowID string `json:"skyflow_id"`
}

// dbError keeps API errors and turns anything else into a 503 that names
// no value: database errors can quote the data they were given. A record
// whose data subject a forget removed meanwhile is a 409 instead.
func dbError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" && pe.ConstraintName == "vault_records_subject_key_fkey" {
		return apierr.New(409, "the record's data subject was forgotten while this request ran; send the request again to store it anew")
	}
	return db.APIError(err, "vault", "the vault database is not available; try again")
}
