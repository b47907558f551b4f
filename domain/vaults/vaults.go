// Package vaults is the registry of vaults: each vault's schema, policy and
// data keys, stored in PostgreSQL (migration 0004) with every version of
// the schema and policy kept, and the keys wrapped by the key-encryption
// key. Loaded vaults are cached in the process with their keys unwrapped,
// and checked against the stored versions on every load, so a change made
// by another process is seen on the next request.
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
	keysVersion   int
}

// Store loads and changes vaults.
type Store struct {
	pool *pgxpool.Pool
	kek  kek.KEK

	mu    sync.Mutex
	cache map[string]*Vault
	usage keyUsage
	// vaultKeys, when set, wraps every keyset a second time with its
	// vault's own key, kept outside the database (crypto-shredding), and
	// keeps the outside keys of the data-subject epochs (subjects.go).
	vaultKeys kek.VaultKeys
	epochs    epochKeys
}

// NewStore returns a Store on pool whose keysets are wrapped by kek.
func NewStore(pool *pgxpool.Pool, k kek.KEK) *Store {
	return &Store{pool: pool, kek: k, cache: map[string]*Vault{}}
}

// WithVaultKeys has s wrap the keysets it stores with each vault's own
// key too, so that deleting a vault can shred it (shred.go). Every process
// of a deployment must be given the same store.
func (s *Store) WithVaultKeys(vk kek.VaultKeys) *Store {
	s.vaultKeys = vk
	return s
}

// NewID returns a new vault id: 32 lower-case hex digits, the form of
// Skyflow vault ids.
func NewID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// errNotFound is the one answer for a vault that does not exist and for
// one the caller may not see, so that neither can be told from the other.
func errNotFound() error {
	return apierr.NotFound("Vault not found. Check the vault ID, and that your roles have access to it.")
}

// parseID accepts a vault id with or without hyphens.
func parseID(id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil || (len(id) != 32 && len(id) != 36) {
		return uuid.UUID{}, errNotFound()
	}
	return u, nil
}

// Load returns the vault id for principal p: not found unless p is a
// platform administrator or holds a role the vault's policy names.
func (s *Store) Load(ctx context.Context, id string, p request.Principal) (*Vault, error) {
	v, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Has(policy.PlatformAdmin) && !v.Policy.Knows(p.Roles) {
		return nil, errNotFound()
	}
	return v, nil
}

func (s *Store) load(ctx context.Context, id string) (*Vault, error) {
	u, err := parseID(id)
	if err != nil {
		return nil, err
	}
	var head Vault
	err = s.pool.QueryRow(ctx,
		`SELECT name, schema_version, policy_version, keys_version, created_by, created_at FROM vaults WHERE id = $1`, u,
	).Scan(&head.Name, &head.SchemaVersion, &head.PolicyVersion, &head.keysVersion, &head.CreatedBy, &head.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, unavailable(err)
	}
	s.flushUsageSoon()
	key := u.String()
	s.mu.Lock()
	cached := s.cache[key]
	s.mu.Unlock()
	if cached != nil && cached.SchemaVersion == head.SchemaVersion && cached.PolicyVersion == head.PolicyVersion && cached.keysVersion == head.keysVersion {
		return cached, nil
	}
	v, err := s.loadVersions(ctx, u, head)
	if err != nil {
		return nil, err
	}
	v.Keys.CountSeals(s.countSeals(u))
	s.mu.Lock()
	s.cache[key] = v
	s.mu.Unlock()
	return v, nil
}

func (s *Store) loadVersions(ctx context.Context, u uuid.UUID, head Vault) (*Vault, error) {
	var rawSchema, rawPolicy []byte
	var w storedKeys
	err := s.pool.QueryRow(ctx, `
		SELECT s.schema, p.policy, k.values_keyset, k.index_keyset, k.kek_id, k.vault_key
		FROM vault_schemas s, vault_policies p, vault_keysets k
		WHERE s.vault_id = $1 AND s.version = $2 AND p.vault_id = $1 AND p.version = $3 AND k.vault_id = $1`,
		u, head.SchemaVersion, head.PolicyVersion,
	).Scan(&rawSchema, &rawPolicy, &w.Values, &w.Index, &w.KEKID, &w.vaultKey)
	if err != nil {
		return nil, unavailable(err)
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
	if v.Keys, err = s.unwrapKeys(ctx, v.ID, w); err != nil {
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
	keys, err := crypto.NewKeys()
	if err != nil {
		return nil, apierr.Internal("new data keys could not be made")
	}
	w, err := s.wrapKeys(ctx, id, keys)
	if err != nil {
		return nil, err
	}
	u, _ := parseID(id)
	if _, err := tx.Exec(ctx, `INSERT INTO vaults (id, name, schema_version, policy_version, created_by) VALUES ($1, $2, 1, 1, $3)`, u, sch.Name, createdBy); err != nil {
		return nil, unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_schemas (vault_id, version, schema, created_by) VALUES ($1, 1, $2, $3)`, u, sch, createdBy); err != nil {
		return nil, unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_policies (vault_id, version, policy, created_by) VALUES ($1, 1, $2, $3)`, u, pol, createdBy); err != nil {
		return nil, unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_keysets (vault_id, values_keyset, index_keyset, kek_id, vault_key) VALUES ($1, $2, $3, $4, $5)`, u, w.Values, w.Index, w.KEKID, w.vaultKey); err != nil {
		return nil, unavailable(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_key_versions (vault_id, key_id) VALUES ($1, $2)`, u, int64(keys.PrimaryKeyID())); err != nil {
		return nil, unavailable(err)
	}
	return &Vault{ID: id, Name: sch.Name, SchemaVersion: 1, PolicyVersion: 1, Schema: sch, Policy: pol, Keys: keys, CreatedBy: createdBy, keysVersion: 1}, nil
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
	return next, unavailable(err)
}

// UpdatePolicy stores pol as the vault's next policy version in tx, with
// the same optimistic concurrency as UpdateSchema.
func (s *Store) UpdatePolicy(ctx context.Context, tx pgx.Tx, v *Vault, basedOn int, by string, pol *policy.Policy) (int, error) {
	next, err := bump(ctx, tx, v.ID, "policy_version", basedOn)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO vault_policies (vault_id, version, policy, created_by) VALUES ($1, $2, $3, $4)`, v.ID, next, pol, by)
	return next, unavailable(err)
}

// bump advances vaults.<column> from basedOn to basedOn+1, or reports a
// conflict when it is no longer basedOn.
func bump(ctx context.Context, tx pgx.Tx, id, column string, basedOn int) (int, error) {
	u, err := parseID(id)
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
	return next, unavailable(err)
}

// unavailable turns a database failure into a 503 without its details
// (they can name values); nil stays nil.
func unavailable(err error) error {
	return db.APIError(err, "vault registry", "the vault database is not available; try again")
}
