package kek

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	vaultapi "github.com/hashicorp/vault/api"
)

// VaultKeys keep one key per vault outside the database. A vault's stored
// keysets are wrapped by the KEK and then by its vault key, so destroying
// the vault key (crypto-shredding) leaves every copy of those keysets —
// the database's and every backup's — impossible to unwrap, and with them
// every value the vault held.
type VaultKeys interface {
	// For returns vault id's key, making it first when create is set. A
	// key that does not exist (never made, or destroyed) is
	// ErrVaultKeyDestroyed.
	For(ctx context.Context, vaultID string, create bool) (KEK, error)
	// Destroy deletes vault id's key for good; a missing key is no error.
	Destroy(ctx context.Context, vaultID string) error
}

// ErrVaultKeyDestroyed: the vault's key does not exist, so nothing it
// wrapped can be opened again.
var ErrVaultKeyDestroyed = errors.New("kek: the vault's key does not exist (destroyed, or never made)")

// vaultIDRE is the form of the names of vault keys: a vault id, or a
// vault id and a subject epoch (SubjectEpochKeyID).
var vaultIDRE = regexp.MustCompile(`^[0-9a-f]{32}(-s[1-9][0-9]{0,9})?$`)

func checkVaultID(id string) error {
	if !vaultIDRE.MatchString(id) {
		return fmt.Errorf("kek: %q is not a vault id", id)
	}
	return nil
}

// SubjectEpochKeyID names the key, in the same store as the vaults' own
// keys, that wraps a vault's data-subject keys during one epoch
// (domain/shredding/subjects.go): destroyed when the epoch ends.
func SubjectEpochKeyID(vaultID string, epoch int) string {
	return fmt.Sprintf("%s-s%d", vaultID, epoch)
}

// dirVaultKeys keeps each vault's key as a 32-byte file in a directory,
// mode 0600 like the local master key beside it: the development and
// single-machine store (SKYFLOW_VAULT_KEYS_DIR).
type dirVaultKeys struct {
	dir   string
	mu    sync.Mutex
	cache map[string]KEK
}

// NewDirVaultKeys keeps vault keys as files in dir (made 0700 if missing).
// Its backups must not outlive the shredding promise: a copy of a key file
// undoes the shredding of its vault.
func NewDirVaultKeys(dir string) (VaultKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kek: vault keys directory: %w", err)
	}
	return &dirVaultKeys{dir: dir, cache: map[string]KEK{}}, nil
}

func (d *dirVaultKeys) path(id string) string { return filepath.Join(d.dir, id+".key") }

func (d *dirVaultKeys) For(_ context.Context, id string, create bool) (KEK, error) {
	if err := checkVaultID(id); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.cache[id]; ok {
		if _, err := os.Stat(d.path(id)); err == nil {
			return k, nil
		}
		delete(d.cache, id) // destroyed by another process
	}
	var key []byte
	var err error
	if create {
		key, err = EnsureKeyFile(d.path(id))
	} else {
		key, err = readKeyFile(d.path(id))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrVaultKeyDestroyed
	}
	if err != nil {
		return nil, err
	}
	k, err := NewLocal(key)
	if err != nil {
		return nil, err
	}
	d.cache[id] = k
	return k, nil
}

// Destroy overwrites the key file with random bytes, syncs, then removes
// it and syncs the directory, so the key is gone from this file system
// (not from copies made of it before).
func (d *dirVaultKeys) Destroy(_ context.Context, id string) error {
	if err := checkVaultID(id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.cache, id)
	path := d.path(id)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kek: destroy vault key: %w", err)
	}
	noise := make([]byte, KeySize)
	rand.Read(noise)
	_, werr := f.WriteAt(noise, 0)
	serr := f.Sync()
	f.Close()
	if err := errors.Join(werr, serr, os.Remove(path)); err != nil {
		return fmt.Errorf("kek: destroy vault key: %w", err)
	}
	if dir, err := os.Open(d.dir); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// transitVaultKeys keeps each vault's key in Vault's Transit engine as
// key <base>-vault-<id>, which never leaves Vault: Transit makes it on the
// first encrypt and deletes it on Destroy. The functions' Vault policy
// needs update on transit/encrypt|decrypt/<base>-vault-* and
// transit/keys/<base>-vault-*/config, and delete on
// transit/keys/<base>-vault-* (knative/vault/setup.sh).
type transitVaultKeys struct {
	client *vaultapi.Client
	base   string
	login  func() error
}

func (t *transitVaultKeys) name(id string) string { return t.base + "-vault-" + id }

func (t *transitVaultKeys) For(_ context.Context, id string, _ bool) (KEK, error) {
	if err := checkVaultID(id); err != nil {
		return nil, err
	}
	k, err := newTransit(t.client, t.name(id), t.login)
	if err != nil {
		return nil, err
	}
	return &destroyedAsError{k}, nil
}

// Destroy allows the key's deletion, then deletes it, with every version.
func (t *transitVaultKeys) Destroy(ctx context.Context, id string) error {
	if err := checkVaultID(id); err != nil {
		return err
	}
	name := t.name(id)
	_, err := t.client.Logical().WriteWithContext(ctx, transitMount+"/keys/"+name+"/config", map[string]any{"deletion_allowed": true})
	if statusCode(err) == http.StatusBadRequest || statusCode(err) == http.StatusNotFound {
		return nil // no such key: nothing to destroy
	}
	if err != nil {
		return fmt.Errorf("kek: allow deleting transit key %q: %w", name, err)
	}
	if _, err := t.client.Logical().DeleteWithContext(ctx, transitMount+"/keys/"+name); err != nil {
		return fmt.Errorf("kek: delete transit key %q: %w", name, err)
	}
	return nil
}

// destroyedAsError reports a deleted Transit key as ErrVaultKeyDestroyed
// when it is asked to decrypt.
type destroyedAsError struct{ *transit }

func (d *destroyedAsError) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := d.transit.Decrypt(ciphertext, associatedData)
	if statusCode(err) == http.StatusBadRequest {
		return nil, errors.Join(ErrVaultKeyDestroyed, err)
	}
	return pt, err
}
