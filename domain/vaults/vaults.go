// Package vaults is the registry of vaults: each vault's schema and policy,
// stored in PostgreSQL (migration 0004) with every version kept, and the
// vault's data keys, which domain/keys keeps wrapped. Loaded vaults are
// cached in the process with their keys unwrapped, and checked against the
// stored versions on every load, so a change made by another process is
// seen on the next request.
//
// What happens to a vault's keys over time (rotation, rewrap, destruction
// of old versions, the KEK's rewrap) is domain/keys/rotation; deleting a
// vault and forgetting its data subjects, with their crypto-shredding, is
// domain/shredding. Both build on this package.
package vaults

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/keys"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Vault is one vault as loaded: its current schema and policy, and its
// keys. It is shared between requests and must not be changed.
type Vault struct {
	ID            string
	Name          string
	SchemaVersion int
	PolicyVersion int
	Schema        *schema.Vault
	Policy        *policy.Policy
	Keys          *crypto.Keys
	CreatedBy     string
	CreatedAt     time.Time
	// KeysVersion moves on with every change of the stored keys, so that
	// every process reloads them.
	KeysVersion int
}

// Store loads and changes vaults.
type Store struct {
	pool *pgxpool.Pool
	keys *keys.Keyring

	mu    sync.Mutex
	cache map[string]*Vault
}

// NewStore returns a Store on pool whose keysets are wrapped by kek.
func NewStore(pool *pgxpool.Pool, k kek.KEK) *Store {
	return &Store{pool: pool, keys: keys.NewKeyring(pool, k), cache: map[string]*Vault{}}
}

// WithVaultKeys has s wrap the keysets it stores with each vault's own
// key too, so that deleting a vault can shred it (domain/shredding). Every
// process of a deployment must be given the same store.
func (s *Store) WithVaultKeys(vk kek.VaultKeys) *Store {
	s.keys.WithVaultKeys(vk)
	return s
}

// Keyring is the process's keyring of the vaults' data keys.
func (s *Store) Keyring() *keys.Keyring { return s.keys }

// NewID returns a new vault id: 32 lower-case hex digits, the form of
// Skyflow vault ids.
func NewID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// ErrNotFound is the one answer for a vault that does not exist and for
// one the caller may not see, so that neither can be told from the other.
func ErrNotFound() error {
	return apierr.NotFound("Vault not found. Check the vault ID, and that your roles have access to it.")
}

// ParseID accepts a vault id with or without hyphens; anything else is a
// vault that does not exist.
func ParseID(id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil || (len(id) != 32 && len(id) != 36) {
		return uuid.UUID{}, ErrNotFound()
	}
	return u, nil
}

// Load returns the vault id for principal p: not found unless p is a
// platform administrator or holds a role the vault's policy names.
func (s *Store) Load(ctx context.Context, id string, p request.Principal) (*Vault, error) {
	v, err := s.LoadUnchecked(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Has(policy.PlatformAdmin) && !v.Policy.Knows(p.Roles) {
		return nil, ErrNotFound()
	}
	return v, nil
}

// Manageable loads a vault the principal may manage; a vault it may not
// see at all is not found.
func (s *Store) Manageable(ctx context.Context, p request.Principal, id string) (*Vault, error) {
	v, err := s.Load(ctx, id, p)
	if err != nil {
		return nil, err
	}
	if !p.Has(policy.PlatformAdmin) && !v.Policy.Can(p.Roles, policy.Manage, "") {
		return nil, apierr.PermissionDenied("your roles may not manage this vault")
	}
	return v, nil
}

// LoadUnchecked returns vault id whoever asks: for the platform's own
// sweeps, never for a request.
func (s *Store) LoadUnchecked(ctx context.Context, id string) (*Vault, error) {
	u, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	var head Vault
	err = s.pool.QueryRow(ctx,
		`SELECT name, schema_version, policy_version, keys_version, created_by, created_at FROM vaults WHERE id = $1`, u,
	).Scan(&head.Name, &head.SchemaVersion, &head.PolicyVersion, &head.KeysVersion, &head.CreatedBy, &head.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound()
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	s.keys.FlushUsageSoon()
	key := u.String()
	s.mu.Lock()
	cached := s.cache[key]
	s.mu.Unlock()
	if cached != nil && cached.SchemaVersion == head.SchemaVersion && cached.PolicyVersion == head.PolicyVersion && cached.KeysVersion == head.KeysVersion {
		return cached, nil
	}
	v, err := s.loadVersions(ctx, u, head)
	if err != nil {
		return nil, err
	}
	v.Keys.CountSeals(s.keys.CountSeals(u))
	s.mu.Lock()
	s.cache[key] = v
	s.mu.Unlock()
	return v, nil
}

func (s *Store) loadVersions(ctx context.Context, u uuid.UUID, head Vault) (*Vault, error) {
	var rawSchema, rawPolicy []byte
	var w keys.Stored
	err := s.pool.QueryRow(ctx, `
		SELECT s.schema, p.policy, k.values_keyset, k.index_keyset, k.kek_id, k.vault_key
		FROM vault_schemas s, vault_policies p, vault_keysets k
		WHERE s.vault_id = $1 AND s.version = $2 AND p.vault_id = $1 AND p.version = $3 AND k.vault_id = $1`,
		u, head.SchemaVersion, head.PolicyVersion,
	).Scan(&rawSchema, &rawPolicy, &w.Values, &w.Index, &w.KEKID, &w.VaultKey)
	if err != nil {
		return nil, Unavailable(err)
	}
	v := head
	v.ID = FormatID(u)
	if err := json.Unmarshal(rawSchema, &v.Schema); err != nil {
		return nil, apierr.Internal("the stored schema of the vault does not decode")
	}
	v.Schema.Normalize()
	if err := json.Unmarshal(rawPolicy, &v.Policy); err != nil {
		return nil, apierr.Internal("the stored policy of the vault does not decode")
	}
	if v.Keys, err = s.keys.Open(ctx, v.ID, w); err != nil {
		return nil, err
	}
	return &v, nil
}

// FormatID is the external form of a vault id.
func FormatID(u uuid.UUID) string { return strings.ReplaceAll(u.String(), "-", "") }

// Create stores a new vault in tx: its first schema and policy versions
// and fresh data keys wrapped by the KEK.
func (s *Store) Create(ctx context.Context, tx pgx.Tx, createdBy string, sch *schema.Vault, pol *policy.Policy) (*Vault, error) {
	id := NewID()
	ks, err := crypto.NewKeys()
	if err != nil {
		return nil, apierr.Internal("new data keys could not be made")
	}
	w, err := s.keys.Wrap(ctx, id, ks)
	if err != nil {
		return nil, err
	}
	u, _ := ParseID(id)
	if _, err := tx.Exec(ctx, `INSERT INTO vaults (id, name, schema_version, policy_version, created_by) VALUES ($1, $2, 1, 1, $3)`, u, sch.Name, createdBy); err != nil {
		return nil, Unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_schemas (vault_id, version, schema, created_by) VALUES ($1, 1, $2, $3)`, u, sch, createdBy); err != nil {
		return nil, Unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_policies (vault_id, version, policy, created_by) VALUES ($1, 1, $2, $3)`, u, pol, createdBy); err != nil {
		return nil, Unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_keysets (vault_id, values_keyset, index_keyset, kek_id, vault_key) VALUES ($1, $2, $3, $4, $5)`, u, w.Values, w.Index, w.KEKID, w.VaultKey); err != nil {
		return nil, Unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_key_versions (vault_id, key_id) VALUES ($1, $2)`, u, int64(ks.PrimaryKeyID())); err != nil {
		return nil, Unavailable(err)
	}
	return &Vault{ID: id, Name: sch.Name, SchemaVersion: 1, PolicyVersion: 1, Schema: sch, Policy: pol, Keys: ks, CreatedBy: createdBy, KeysVersion: 1}, nil
}

// UpdateSchema stores sch as the vault's next schema version in tx. The
// caller says which version it changed (optimistic concurrency: a change
// made meanwhile is a conflict, not lost) and the change must keep stored
// data readable (schema.CheckEvolution); the current policy must still
// hold for the new schema.
func (s *Store) UpdateSchema(ctx context.Context, tx pgx.Tx, v *Vault, basedOn int, by string, sch *schema.Vault) (int, error) {
	if err := schema.CheckEvolution(v.Schema, sch); err != nil {
		return 0, err
	}
	if err := v.Policy.Validate(sch); err != nil {
		return 0, err
	}
	next, err := bump(ctx, tx, v.ID, "schema_version", basedOn)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO vault_schemas (vault_id, version, schema, created_by) VALUES ($1, $2, $3, $4)`, v.ID, next, sch, by)
	return next, Unavailable(err)
}

// UpdatePolicy stores pol as the vault's next policy version in tx, with
// the same optimistic concurrency as UpdateSchema.
func (s *Store) UpdatePolicy(ctx context.Context, tx pgx.Tx, v *Vault, basedOn int, by string, pol *policy.Policy) (int, error) {
	next, err := bump(ctx, tx, v.ID, "policy_version", basedOn)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO vault_policies (vault_id, version, policy, created_by) VALUES ($1, $2, $3, $4)`, v.ID, next, pol, by)
	return next, Unavailable(err)
}

// bump advances vaults.<column> from basedOn to basedOn+1, or reports a
// conflict when it is no longer basedOn.
func bump(ctx context.Context, tx pgx.Tx, id, column string, basedOn int) (int, error) {
	u, err := ParseID(id)
	if err != nil {
		return 0, err
	}
	var sql string
	switch column { // constant statements: the column is never caller text
	case "schema_version":
		sql = `UPDATE vaults SET schema_version = schema_version + 1, updated_at = now() WHERE id = $1 AND schema_version = $2 RETURNING schema_version`
	case "policy_version":
		sql = `UPDATE vaults SET policy_version = policy_version + 1, updated_at = now() WHERE id = $1 AND policy_version = $2 RETURNING policy_version`
	}
	var next int
	err = tx.QueryRow(ctx, sql, u, basedOn).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, apierr.New(409, "the vault changed since version %d: get it again, reapply your change and send it with the current version", basedOn)
	}
	return next, Unavailable(err)
}

// Forget drops a vault from the process's cache.
func (s *Store) Forget(id string) {
	u, err := ParseID(id)
	if err != nil {
		return
	}
	s.mu.Lock()
	delete(s.cache, u.String())
	s.mu.Unlock()
}

// Unavailable turns a failure of the vault database into a 503 without its
// details (they can name values); API errors and nil pass unchanged.
func Unavailable(err error) error {
	return db.APIError(err, "vault registry", "the vault database is not available; try again")
}
