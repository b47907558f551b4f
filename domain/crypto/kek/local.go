package kek

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
)

// KeySize is the length in bytes of a local master key (AES-256).
const KeySize = 32

type local struct {
	aead *subtle.AESGCM
	id   string
}

// NewLocal returns a KEK that encrypts with AES-256-GCM under key, a random
// 96-bit nonce per message. key must be exactly [KeySize] bytes.
//
// The ID carries the first 8 hex digits of the key's SHA-256, enough to tell
// keys apart and too little to help guess one.
func NewLocal(key []byte) (KEK, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("kek: local master key is %d bytes; it must be exactly %d", len(key), KeySize)
	}
	a, err := subtle.NewAESGCM(key)
	if err != nil {
		return nil, fmt.Errorf("kek: local master key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &local{aead: a, id: "local:" + hex.EncodeToString(sum[:4])}, nil
}

func (l *local) ID() string { return l.id }

func (l *local) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	ct, err := l.aead.Encrypt(plaintext, associatedData)
	if err != nil {
		return nil, fmt.Errorf("kek %s: encrypt failed", l.id)
	}
	return ct, nil
}

// Decrypt fails alike for a wrong key, wrong associated data and tampering:
// the reasons are indistinguishable by design.
func (l *local) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := l.aead.Decrypt(ciphertext, associatedData)
	if err != nil {
		return nil, fmt.Errorf("kek %s: decryption failed (wrong key, wrong associated data, or damaged ciphertext)", l.id)
	}
	return pt, nil
}
