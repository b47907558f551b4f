package crypto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
)

// SubjectKey is one data subject's own AES-256-GCM key. A value of a
// record that belongs to a subject is sealed twice: first with its
// subject's key (SealFor), then, like every value, with the vault's
// primary data key. Destroying the subject key makes the value unreadable
// even to whoever holds the vault's keys and a backup.
type SubjectKey struct {
	id   [16]byte
	aead *subtle.AESGCM
}

// SubjectKeySize is the length of a subject key's material.
const SubjectKeySize = 32

// NewSubjectKeyMaterial returns fresh key material for a subject key.
func NewSubjectKeyMaterial() []byte {
	b := make([]byte, SubjectKeySize)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}

// NewSubjectKey makes the subject key named id from its material.
func NewSubjectKey(id [16]byte, material []byte) (*SubjectKey, error) {
	if len(material) != SubjectKeySize {
		return nil, fmt.Errorf("crypto: a subject key is %d bytes, not %d", SubjectKeySize, len(material))
	}
	a, err := subtle.NewAESGCM(material)
	if err != nil {
		return nil, fmt.Errorf("crypto: subject key: %w", err)
	}
	return &SubjectKey{id: id, aead: a}, nil
}

// ID names the key; it is stored with every value the key sealed.
func (sk *SubjectKey) ID() [16]byte { return sk.id }

// subjectLayer starts the inner layer of a subject's value: canonical JSON
// never starts with a zero byte, so the inner layer cannot be mistaken for
// a value. It is followed by the subject key's id and the AES-GCM
// ciphertext.
const subjectLayer = 0x00

const subjectHeaderSize = 1 + 16

// ErrSubjectKeyNeeded is the error Open returns for a value sealed for a
// data subject when it is not given that subject's key.
var ErrSubjectKeyNeeded = errors.New("crypto: the value is sealed for a data subject; its key is needed")

// SealFor seals plaintext for cell c with subject key sk and then with the
// primary values key; a nil sk is just [Keys.Seal].
func (k *Keys) SealFor(sk *SubjectKey, plaintext []byte, c Cell) ([]byte, error) {
	if sk == nil {
		return k.Seal(plaintext, c)
	}
	inner := make([]byte, subjectHeaderSize, subjectHeaderSize+len(plaintext)+28)
	inner[0] = subjectLayer
	copy(inner[1:], sk.id[:])
	ct, err := sk.aead.Encrypt(plaintext, append(c.associatedData(), inner[:subjectHeaderSize]...))
	if err != nil {
		return nil, fmt.Errorf("crypto: seal %s.%s for its subject: encryption failed", c.Table, c.Column)
	}
	return k.seal(append(inner, ct...), c)
}

// OpenFor opens what SealFor sealed. A value sealed for a subject opens
// only with that subject's key sk; one sealed without a subject opens
// whatever sk is. Any failure is [ErrCellMismatch], or
// [ErrSubjectKeyNeeded] when sk is nil or another subject's.
func (k *Keys) OpenFor(sk *SubjectKey, ciphertext []byte, c Cell) ([]byte, error) {
	a, _ := k.snapshot()
	inner, err := a.Decrypt(ciphertext, c.associatedData())
	if err != nil {
		return nil, ErrCellMismatch
	}
	if len(inner) == 0 || inner[0] != subjectLayer {
		return inner, nil
	}
	if len(inner) < subjectHeaderSize {
		return nil, ErrCellMismatch
	}
	if sk == nil || !bytes.Equal(inner[1:subjectHeaderSize], sk.id[:]) {
		return nil, ErrSubjectKeyNeeded
	}
	header := inner[:subjectHeaderSize]
	pt, err := sk.aead.Decrypt(inner[subjectHeaderSize:], append(c.associatedData(), header...))
	if err != nil {
		return nil, ErrCellMismatch
	}
	return pt, nil
}
