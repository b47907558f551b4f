package crypto

import (
	"bytes"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
)

// Wrapped is a vault's keysets encrypted by a KEK, as stored. KEKID names
// the KEK that wrapped them (see [kek.KEK.ID]).
type Wrapped struct {
	Values, Index []byte
	KEKID         string
}

// keysetAD binds a wrapped keyset to its vault and purpose, so keysets
// cannot be swapped between vaults or between values and index.
func keysetAD(vaultID, purpose string) []byte {
	return []byte("skyflow/vault/" + vaultID + "/" + purpose)
}

// Wrap encrypts both keysets with k for storage beside vault vaultID.
func (k *Keys) Wrap(kek kek.KEK, vaultID string) (Wrapped, error) {
	k.mu.RLock()
	values, index := k.values, k.index
	k.mu.RUnlock()
	v, err := wrap(values, kek, keysetAD(vaultID, "values"))
	if err != nil {
		return Wrapped{}, fmt.Errorf("crypto: wrap values keyset of vault %s: %w", vaultID, err)
	}
	i, err := wrap(index, kek, keysetAD(vaultID, "index"))
	if err != nil {
		return Wrapped{}, fmt.Errorf("crypto: wrap index keyset of vault %s: %w", vaultID, err)
	}
	return Wrapped{Values: v, Index: i, KEKID: kek.ID()}, nil
}

func wrap(h *keyset.Handle, kek kek.KEK, ad []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kek, ad); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unwrap decrypts w, the keysets of vault vaultID. It fails if w was
// wrapped by another KEK or for another vault.
func Unwrap(k kek.KEK, vaultID string, w Wrapped) (*Keys, error) {
	wrapper, ok := k, w.KEKID == k.ID()
	if ring, isRing := k.(*kek.Ring); isRing && !ok {
		wrapper, ok = ring.For(w.KEKID) // during a KEK rotation
	}
	if !ok {
		return nil, fmt.Errorf("crypto: keys of vault %s were wrapped by KEK %q, not %q; configure that KEK", vaultID, w.KEKID, k.ID())
	}
	values, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(w.Values)), wrapper, keysetAD(vaultID, "values"))
	if err != nil {
		return nil, fmt.Errorf("crypto: unwrap values keyset of vault %s: %w", vaultID, err)
	}
	index, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(w.Index)), wrapper, keysetAD(vaultID, "index"))
	if err != nil {
		return nil, fmt.Errorf("crypto: unwrap index keyset of vault %s: %w", vaultID, err)
	}
	return newKeys(values, index)
}
