package crypto

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Keys are a vault's data keys, unwrapped. They are safe for concurrent
// use; [Keys.Rotate] may run alongside Seal and Open.
type Keys struct {
	mu     sync.RWMutex
	values *keyset.Handle
	aead   tink.AEAD
	index  *keyset.Handle
	prf    *prf.Set
}

// NewKeys generates a fresh values keyset (AES-256-GCM) and index keyset
// (HMAC-SHA256 PRF) for a new vault.
func NewKeys() (*Keys, error) {
	values, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new values keyset: %w", err)
	}
	index, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new index keyset: %w", err)
	}
	return newKeys(values, index)
}

func newKeys(values, index *keyset.Handle) (*Keys, error) {
	a, err := aead.New(values)
	if err != nil {
		return nil, fmt.Errorf("crypto: values keyset: %w", err)
	}
	p, err := prf.NewPRFSet(index)
	if err != nil {
		return nil, fmt.Errorf("crypto: index keyset: %w", err)
	}
	return &Keys{values: values, aead: a, index: index, prf: p}, nil
}

// Rotate adds a new AES-256-GCM key to the values keyset and makes it
// primary: later Seals use it, and Open still accepts every older key. The
// caller must Wrap and store the keys again for the rotation to persist.
//
// The index keyset is not rotated: blind indexes and token seeds must stay
// stable for lookups to find existing rows.
func (k *Keys) Rotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := keyset.NewManagerFromHandle(k.values)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("crypto: rotate: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return fmt.Errorf("crypto: rotate: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return fmt.Errorf("crypto: rotate: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return fmt.Errorf("crypto: rotate: %w", err)
	}
	k.values, k.aead = h, a
	return nil
}

// DestroyOlder deletes every values key but the primary from the keyset,
// returning their ids: what they sealed can never be opened again, from
// the database or from any backup of it. The caller must Wrap and store
// the keys for the destruction to persist, and must first have re-sealed
// everything still under an older key.
func (k *Keys) DestroyOlder() ([]uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	info := k.values.KeysetInfo()
	m := keyset.NewManagerFromHandle(k.values)
	var destroyed []uint32
	for _, key := range info.GetKeyInfo() {
		if key.GetKeyId() == info.GetPrimaryKeyId() {
			continue
		}
		if err := m.Delete(key.GetKeyId()); err != nil {
			return nil, fmt.Errorf("crypto: destroy: %w", err)
		}
		destroyed = append(destroyed, key.GetKeyId())
	}
	h, err := m.Handle()
	if err != nil {
		return nil, fmt.Errorf("crypto: destroy: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: destroy: %w", err)
	}
	k.values, k.aead = h, a
	return destroyed, nil
}

// KeyIDs lists the ids of the values keys: the versions a stored value
// may be under, the primary among them.
func (k *Keys) KeyIDs() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var ids []uint32
	for _, key := range k.values.KeysetInfo().GetKeyInfo() {
		ids = append(ids, key.GetKeyId())
	}
	return ids
}

// PrimaryKeyID is the Tink key id new Seals use; a stored ciphertext whose
// [KeyID] differs predates the latest Rotate and may be re-sealed.
func (k *Keys) PrimaryKeyID() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.values.KeysetInfo().GetPrimaryKeyId()
}

func (k *Keys) snapshot() (tink.AEAD, *prf.Set) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.aead, k.prf
}

// tinkPrefixSize is the length of the prefix Tink puts on ciphertexts of
// TINK-prefixed keys: a 0x01 version byte, then the key id big-endian.
const tinkPrefixSize = 5

// KeyID reports the Tink key id in ciphertext's 5-byte prefix, so a reader
// can tell which key version sealed a row without opening it. ok is false
// if ciphertext has no Tink prefix.
func KeyID(ciphertext []byte) (id uint32, ok bool) {
	if len(ciphertext) < tinkPrefixSize || ciphertext[0] != 0x01 {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:tinkPrefixSize]), true
}
