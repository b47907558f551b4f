package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// The keys of a vault's data-subject epochs (migration 0012): each
// wraps the subject keys made during its epoch, and is itself wrapped by
// a key outside the database (kek.SubjectEpochKeyID), which
// domain/shredding destroys when the epoch ends.

func epochKeyAD(vaultID string, epoch int) []byte {
	return fmt.Appendf(nil, "skyflow/subject-epoch/v1/%s/%d", vaultID, epoch)
}

// epochKeyTTL bounds how long a process keeps an epoch key unwrapped: an
// ended epoch's key should not outlive its destruction by long in memory.
const epochKeyTTL = 10 * time.Minute

type cachedEpochKey struct {
	key kek.KEK
	at  time.Time
}

// epochKeys caches unwrapped epoch keys by "vault/epoch".
type epochKeys struct {
	mu   sync.Mutex
	keys map[string]cachedEpochKey
}

func (c *epochKeys) get(name string) kek.KEK {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[name]
	if !ok || time.Since(e.at) > epochKeyTTL {
		delete(c.keys, name)
		return nil
	}
	return e.key
}

func (c *epochKeys) put(name string, k kek.KEK) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = map[string]cachedEpochKey{}
	}
	c.keys[name] = cachedEpochKey{k, time.Now()}
}

func (c *epochKeys) drop(name string) {
	c.mu.Lock()
	delete(c.keys, name)
	c.mu.Unlock()
}

// errNoSubjectStore: subject keys are only worth making when they can be
// shredded.
func errNoSubjectStore() error {
	return apierr.Unavailable("this deployment has no vault key store (SKYFLOW_VAULT_KEYS_DIR or Vault Transit), which data_subject tables need to forget a subject")
}

// EpochKey returns vault u's (vaultID's) key of subject epoch n, making it
// when create is set (in q, so it is made with the writer that needs it).
func (r *Keyring) EpochKey(ctx context.Context, q Querier, vaultID string, u uuid.UUID, n int, create bool) (kek.KEK, error) {
	if r.vaultKeys == nil {
		return nil, errNoSubjectStore()
	}
	name := kek.SubjectEpochKeyID(vaultID, n)
	if k := r.epochs.get(name); k != nil {
		return k, nil
	}
	outside, err := r.vaultKeys.For(ctx, name, create)
	if err != nil {
		return nil, fmt.Errorf("vaults: the outside key of subject epoch %d: %w", n, err)
	}
	var wrapped []byte
	err = q.QueryRow(ctx, `SELECT wrapped FROM vault_subject_epochs WHERE vault_id = $1 AND epoch = $2`, u, n).Scan(&wrapped)
	if errors.Is(err, pgx.ErrNoRows) && create {
		// Made here; a writer racing to make it too loses the insert and
		// reads the winner's.
		fresh, werr := outside.Encrypt(crypto.NewSubjectKeyMaterial(), epochKeyAD(vaultID, n))
		if werr != nil {
			return nil, fmt.Errorf("vaults: wrap subject epoch %d: %w", n, werr)
		}
		if _, err := q.Exec(ctx, `INSERT INTO vault_subject_epochs (vault_id, epoch, wrapped) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, u, n, fresh); err != nil {
			return nil, err
		}
		err = q.QueryRow(ctx, `SELECT wrapped FROM vault_subject_epochs WHERE vault_id = $1 AND epoch = $2`, u, n).Scan(&wrapped)
	}
	if err != nil {
		return nil, err
	}
	if wrapped == nil {
		return nil, fmt.Errorf("vaults: subject epoch %d of vault %s is destroyed: %w", n, vaultID, kek.ErrVaultKeyDestroyed)
	}
	material, err := outside.Decrypt(wrapped, epochKeyAD(vaultID, n))
	if err != nil {
		return nil, fmt.Errorf("vaults: unwrap subject epoch %d: %w", n, err)
	}
	k, err := kek.NewLocal(material)
	if err != nil {
		return nil, err
	}
	r.epochs.put(name, k)
	return k, nil
}

// DropEpochKey forgets this process's copy of vault vaultID's key of epoch
// n, before its outside key is destroyed.
func (r *Keyring) DropEpochKey(vaultID string, n int) {
	r.epochs.drop(kek.SubjectEpochKeyID(vaultID, n))
}
