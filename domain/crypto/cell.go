package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCellMismatch is the error Open returns for any ciphertext that fails to
// open: a wrong cell, a wrong key and tampering look the same, and the
// error carries no data.
var ErrCellMismatch = errors.New("crypto: ciphertext does not open for this cell")

// Cell names where a value lives. Its fields are bound to the value's
// ciphertext as associated data.
type Cell struct {
	VaultID, Table, Column, RecordID string
}

// associatedData encodes c unambiguously: each field is length-prefixed,
// so no two different cells encode alike however their fields are split.
func (c Cell) associatedData() []byte {
	b := appendField(nil, "skyflow/cell/v1")
	b = appendField(b, c.VaultID)
	b = appendField(b, c.Table)
	b = appendField(b, c.Column)
	return appendField(b, c.RecordID)
}

// appendField appends s to b preceded by its length as a big-endian uint32.
func appendField[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Seal encrypts plaintext for cell c with the primary values key. The
// plaintext may not start with a zero byte, which marks a value sealed
// for a data subject (canonical values never do).
func (k *Keys) Seal(plaintext []byte, c Cell) ([]byte, error) {
	if len(plaintext) > 0 && plaintext[0] == subjectLayer {
		return nil, fmt.Errorf("crypto: seal %s.%s: a value may not start with a zero byte", c.Table, c.Column)
	}
	return k.seal(plaintext, c)
}

// seal encrypts with the primary values key whatever the plaintext.
func (k *Keys) seal(plaintext []byte, c Cell) ([]byte, error) {
	a, _ := k.snapshot()
	ct, err := a.Encrypt(plaintext, c.associatedData())
	if err != nil {
		return nil, fmt.Errorf("crypto: seal %s.%s: encryption failed", c.Table, c.Column)
	}
	if k.onSeal != nil {
		if id, ok := KeyID(ct); ok {
			k.onSeal(id)
		}
	}
	return ct, nil
}

// Open decrypts a ciphertext Seal produced for the same cell c, with
// whichever values key sealed it. Any failure is [ErrCellMismatch]; a value
// sealed for a data subject needs [Keys.OpenFor].
func (k *Keys) Open(ciphertext []byte, c Cell) ([]byte, error) {
	return k.OpenFor(nil, ciphertext, c)
}
