package crypto

import (
	"errors"
	"testing"
)

// FuzzOpen feeds Open arbitrary bytes, seeded with a real ciphertext and
// mutations of it: it must never panic and never succeed.
func FuzzOpen(f *testing.F) {
	k, err := NewKeys()
	if err != nil {
		f.Fatal(err)
	}
	ct, err := k.Seal([]byte("secret"), cell)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct[:len(ct)-1])
	f.Add(append(ct[:5:5], make([]byte, 28)...))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := k.Open(b, cell)
		if err == nil {
			t.Fatalf("random ciphertext %x opened to %x", b, pt)
		}
		if !errors.Is(err, ErrCellMismatch) {
			t.Fatalf("err = %v, want ErrCellMismatch", err)
		}
	})
}
