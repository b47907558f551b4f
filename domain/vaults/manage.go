package vaults

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Event types of the management API. Each has a schema in eventing/catalog.
const (
	CreatedType       = "com.skyflow.vault.created"
	SchemaUpdatedType = "com.skyflow.vault.schema.updated"
	PolicyUpdatedType = "com.skyflow.vault.policy.updated"
)

// Manager carries out the management API on vaults: create, get, and new
// versions of a schema or policy. Only platform administrators create
// vaults; a vault's schema and policy are managed by administrators and by
// roles its policy grants manage to.
type Manager struct {
	*Backend
	Source string // the CloudEvents source of the events it emits
}

// NewManager returns a Manager on b whose events come from source.
func NewManager(b *Backend, source string) *Manager { return &Manager{Backend: b, Source: source} }

// View is a vault as the management API shows it.
type View struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	Description   string         `json:"description,omitempty"`
	Tables        []schema.Table `json:"tables"`
	Policy        *policy.Policy `json:"policy"`
	SchemaVersion int            `json:"schema_version"`
	PolicyVersion int            `json:"policy_version"`
	CreatedBy     string         `json:"created_by"`
	CreatedAt     time.Time      `json:"created_at"`
}

func view(v *Vault) *View {
	return &View{
		ID: v.ID, Name: v.Schema.Name, Description: v.Schema.Description, Tables: v.Schema.Tables,
		Policy: v.Policy, SchemaVersion: v.SchemaVersion, PolicyVersion: v.PolicyVersion,
		CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt,
	}
}

// change is the data of the management events: identifiers and versions.
type change struct {
	VaultID string `json:"vault_id"`
	Version int    `json:"version"`
}

// Create makes a vault from body: the schema's fields (name, description,
// tables) and an optional policy. Without a policy no role may touch the
// vault's data until one is set: deny by default.
func (m *Manager) Create(ctx context.Context, p request.Principal, body []byte) (*View, error) {
	if !p.Has(policy.PlatformAdmin) {
		return nil, apierr.PermissionDenied("only platform administrators (role %q) may create vaults", policy.PlatformAdmin)
	}
	fields, err := split(body, "policy")
	if err != nil {
		return nil, err
	}
	sch, err := schema.Decode(fields.rest)
	if err != nil {
		return nil, err
	}
	pol := &policy.Policy{Roles: map[string]policy.Role{}}
	if fields.taken != nil {
		if pol, err = policy.Decode(fields.taken, sch); err != nil {
			return nil, err
		}
	}
	var v *Vault
	err = m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		if v, err = m.Vaults.Create(ctx, tx, p.ID, sch, pol); err != nil {
			return nil, err
		}
		return []event.Event{m.event(CreatedType, p, v.ID, 1)}, nil
	})
	if err != nil {
		return nil, Unavailable(err)
	}
	v.CreatedAt = time.Now().UTC()
	return view(v), nil
}

// Get shows a vault to an administrator or a role that may manage it.
func (m *Manager) Get(ctx context.Context, p request.Principal, id string) (*View, error) {
	v, err := m.Vaults.Manageable(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return view(v), nil
}

// UpdateSchema stores a new schema version from body: the schema's fields
// and "version", the version the change was made to.
func (m *Manager) UpdateSchema(ctx context.Context, p request.Principal, id string, body []byte) (*View, error) {
	v, basedOn, rest, err := m.versioned(ctx, p, id, body)
	if err != nil {
		return nil, err
	}
	sch, err := schema.Decode(rest)
	if err != nil {
		return nil, err
	}
	err = m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		next, err := m.Vaults.UpdateSchema(ctx, tx, v, basedOn, p.ID, sch)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE vaults SET name = $2 WHERE id = $1`, v.ID, sch.Name); err != nil {
			return nil, err
		}
		return []event.Event{m.event(SchemaUpdatedType, p, v.ID, next)}, nil
	})
	if err != nil {
		return nil, Unavailable(err)
	}
	return m.Get(ctx, p, id)
}

// UpdatePolicy stores a new policy version from body: the policy's fields
// and "version", the version the change was made to.
func (m *Manager) UpdatePolicy(ctx context.Context, p request.Principal, id string, body []byte) (*View, error) {
	v, basedOn, rest, err := m.versioned(ctx, p, id, body)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Decode(rest, v.Schema)
	if err != nil {
		return nil, err
	}
	err = m.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		next, err := m.Vaults.UpdatePolicy(ctx, tx, v, basedOn, p.ID, pol)
		if err != nil {
			return nil, err
		}
		return []event.Event{m.event(PolicyUpdatedType, p, v.ID, next)}, nil
	})
	if err != nil {
		return nil, Unavailable(err)
	}
	return m.Get(ctx, p, id)
}

// versioned reads a change request: the vault, which the principal must
// be allowed to manage, the version the change was made to ("version" in
// body), and the rest of body.
func (m *Manager) versioned(ctx context.Context, p request.Principal, id string, body []byte) (*Vault, int, []byte, error) {
	v, err := m.Vaults.Manageable(ctx, p, id)
	if err != nil {
		return nil, 0, nil, err
	}
	fields, err := split(body, "version")
	if err != nil {
		return nil, 0, nil, err
	}
	basedOn, err := version(fields.taken)
	if err != nil {
		return nil, 0, nil, err
	}
	return v, basedOn, fields.rest, nil
}

func (m *Manager) event(typ string, p request.Principal, vaultID string, version int) event.Event {
	return NewEvent(m.Source, typ, p, vaultID, version)
}

// NewEvent is an event about vault vaultID from source, caused by p: the
// shape of every vault event. Its data, {vault_id, version}, is for the
// caller to replace when the event says more.
func NewEvent(source, typ string, p request.Principal, vaultID string, version int) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now())
	e.SetSubject(vaultID)
	e.SetExtension("principal", p.ID)
	e.SetExtension("vaultid", vaultID)
	e.SetExtension("partitionkey", vaultID)
	_ = e.SetData(event.ApplicationJSON, change{VaultID: vaultID, Version: version})
	return e
}

// splitFields is a JSON object with one member taken out.
type splitFields struct {
	taken json.RawMessage // nil when absent
	rest  []byte
}

// split takes member name out of a JSON object body.
func split(body []byte, name string) (splitFields, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return splitFields{}, apierr.InvalidArgument("the request body must be a JSON object")
	}
	out := splitFields{taken: obj[name]}
	delete(obj, name)
	rest, err := json.Marshal(obj)
	if err != nil {
		return splitFields{}, apierr.InvalidArgument("the request body must be a JSON object")
	}
	out.rest = rest
	return out, nil
}

func version(raw json.RawMessage) (int, error) {
	var n int
	if raw == nil || json.Unmarshal(bytes.TrimSpace(raw), &n) != nil || n < 1 {
		return 0, apierr.InvalidArgument("version is required: the version you changed, from the vault's schema_version or policy_version")
	}
	return n, nil
}
