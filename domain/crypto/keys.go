package crypto

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"

	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
)

// Keys are a vault's data keys, unwrapped. They are safe for concurrent
// use; [Keys.Rotate] may run alongside Seal and Open.
type Keys struct {
	mu     sync.RWMutex
	values *keyset.Handle
	aead   tink.AEAD
	index  *keyset.Handle
	prf    *prf.Set
	onSeal func(keyID uint32)
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

// Rotate adds a new key to each keyset and makes it primary: later Seals
// use the new AES-256-GCM key and blind indexes and token seeds the new
// HMAC key, while Open and [Keys.BlindIndexes] still accept every older
// key, so stored values open and lookups find rows indexed before the
// rotation until the rewrap has moved them. The caller must Wrap and store
// the keys again for the rotation to persist.
func (k *Keys) Rotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	values, err := rotated(k.values, aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("crypto: rotate values keyset: %w", err)
	}
	index, err := rotated(k.index, prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return fmt.Errorf("crypto: rotate index keyset: %w", err)
	}
	return k.set(values, index)
}

// DestroyOlder deletes every key but the primary from both keysets,
// returning the ids of the values keys it deleted: what they sealed can
// never be opened again, from the database or from any backup of it, and
// indexes computed with the older index keys match nothing. The caller
// must Wrap and store the keys for the destruction to persist, and must
// first have re-sealed and re-indexed everything still under an older key.
func (k *Keys) DestroyOlder() ([]uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	values, destroyed, err := withoutOlder(k.values)
	if err != nil {
		return nil, fmt.Errorf("crypto: destroy values keys: %w", err)
	}
	index, _, err := withoutOlder(k.index)
	if err != nil {
		return nil, fmt.Errorf("crypto: destroy index keys: %w", err)
	}
	if err := k.set(values, index); err != nil {
		return nil, err
	}
	return destroyed, nil
}

// set replaces both keysets and their primitives; k.mu is held.
func (k *Keys) set(values, index *keyset.Handle) error {
	n, err := newKeys(values, index)
	if err != nil {
		return err
	}
	k.values, k.aead, k.index, k.prf = n.values, n.aead, n.index, n.prf // onSeal stays
	return nil
}

// rotated is h with a new key from template as its primary.
func rotated(h *keyset.Handle, template *tinkpb.KeyTemplate) (*keyset.Handle, error) {
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(template)
	if err != nil {
		return nil, err
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, err
	}
	return m.Handle()
}

// withoutOlder is h with only its primary key, and the ids it dropped.
func withoutOlder(h *keyset.Handle) (*keyset.Handle, []uint32, error) {
	info := h.KeysetInfo()
	m := keyset.NewManagerFromHandle(h)
	var dropped []uint32
	for _, key := range info.GetKeyInfo() {
		if key.GetKeyId() == info.GetPrimaryKeyId() {
			continue
		}
		if err := m.Delete(key.GetKeyId()); err != nil {
			return nil, nil, err
		}
		dropped = append(dropped, key.GetKeyId())
	}
	h, err := m.Handle()
	return h, dropped, err
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

// CountSeals has f called with the sealing key's id after every Seal, so
// that a key's use can be counted against AES-GCM's limit. Set it before
// the Keys are shared.
func (k *Keys) CountSeals(f func(keyID uint32)) { k.onSeal = f }

// IndexKeyIDs lists the ids of the index keys; more than one while a
// rotation's rewrap is re-indexing the vault.
func (k *Keys) IndexKeyIDs() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var ids []uint32
	for _, key := range k.index.KeysetInfo().GetKeyInfo() {
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
