package crypto

import (
	"errors"
	"testing"
)

// After DestroyOlder, what older keys sealed never opens again, and what
// the primary sealed still does.
func TestDestroyOlderMakesOldCiphertextUnreadable(t *testing.T) {
	k, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	cell := Cell{VaultID: "v", Table: "t", Column: "c", RecordID: "r"}
	old, _ := k.Seal([]byte(`"secret"`), cell)
	if err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	current, _ := k.Seal([]byte(`"secret"`), cell)
	destroyed, err := k.DestroyOlder()
	if err != nil || len(destroyed) != 1 {
		t.Fatalf("destroyed %v, %v", destroyed, err)
	}
	if id, _ := KeyID(old); id != destroyed[0] {
		t.Fatalf("destroyed key %d, old ciphertext under %d", destroyed[0], id)
	}
	if _, err := k.Open(old, cell); !errors.Is(err, ErrCellMismatch) {
		t.Fatalf("old ciphertext opened after destruction: %v", err)
	}
	if plain, err := k.Open(current, cell); err != nil || string(plain) != `"secret"` {
		t.Fatalf("current ciphertext: %q, %v", plain, err)
	}
	if again, err := k.DestroyOlder(); err != nil || len(again) != 0 {
		t.Fatalf("second destroy: %v, %v", again, err)
	}
}
