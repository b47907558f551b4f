package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func newSubjectKey(t *testing.T, id byte) *SubjectKey {
	t.Helper()
	sk, err := NewSubjectKey([16]byte{id}, NewSubjectKeyMaterial())
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// A value sealed for a subject opens with its subject's key only: not
// without one, not with another subject's, not as another cell.
func TestSealForOpensOnlyWithTheSubjectsKey(t *testing.T) {
	k, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := newSubjectKey(t, 1), newSubjectKey(t, 2)
	cell := Cell{VaultID: "v", Table: "t", Column: "c", RecordID: "r"}
	value := []byte(`"4111 1111 1111 1111"`)
	ct, err := k.SealFor(alice, value, cell)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, value) {
		t.Fatal("the ciphertext holds the value")
	}
	if got, err := k.OpenFor(alice, ct, cell); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("OpenFor with the subject's key: %q, %v", got, err)
	}
	if _, err := k.Open(ct, cell); !errors.Is(err, ErrSubjectKeyNeeded) {
		t.Fatalf("Open without the subject's key: %v, want ErrSubjectKeyNeeded", err)
	}
	if _, err := k.OpenFor(bob, ct, cell); !errors.Is(err, ErrSubjectKeyNeeded) {
		t.Fatalf("OpenFor with another subject's key: %v, want ErrSubjectKeyNeeded", err)
	}
	other := cell
	other.RecordID = "r2"
	if _, err := k.OpenFor(alice, ct, other); !errors.Is(err, ErrCellMismatch) {
		t.Fatalf("OpenFor as another cell: %v, want ErrCellMismatch", err)
	}
	// Same id, other material: a key made anew after a forget.
	impostor, _ := NewSubjectKey(alice.ID(), NewSubjectKeyMaterial())
	if _, err := k.OpenFor(impostor, ct, cell); !errors.Is(err, ErrCellMismatch) {
		t.Fatalf("OpenFor with other material under the same id: %v, want ErrCellMismatch", err)
	}
}

// The outer layer is the vault's data key as for any value: a rotation
// and the rewrap's re-seal keep the inner layer openable, and the outer
// key id is the primary's.
func TestSealForSurvivesDataKeyRotation(t *testing.T) {
	k, _ := NewKeys()
	sk := newSubjectKey(t, 7)
	cell := Cell{VaultID: "v", Table: "t", Column: "c", RecordID: "r"}
	ct, _ := k.SealFor(sk, []byte(`42`), cell)
	if err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	plain, err := k.OpenFor(sk, ct, cell)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := k.SealFor(sk, plain, cell)
	if id, _ := KeyID(again); id != k.PrimaryKeyID() {
		t.Fatalf("resealed under key %d, want the primary %d", id, k.PrimaryKeyID())
	}
	if _, err := k.DestroyOlder(); err != nil {
		t.Fatal(err)
	}
	if got, err := k.OpenFor(sk, again, cell); err != nil || string(got) != "42" {
		t.Fatalf("after destroying the old data key: %q, %v", got, err)
	}
}

// A value sealed without a subject opens whether or not a key is given.
func TestOpenForPlainValue(t *testing.T) {
	k, _ := NewKeys()
	cell := Cell{VaultID: "v", Table: "t", Column: "c", RecordID: "r"}
	ct, _ := k.SealFor(nil, []byte(`true`), cell)
	for _, sk := range []*SubjectKey{nil, newSubjectKey(t, 3)} {
		if got, err := k.OpenFor(sk, ct, cell); err != nil || string(got) != "true" {
			t.Fatalf("OpenFor(%v): %q, %v", sk != nil, got, err)
		}
	}
}

func TestNewSubjectKeyRefusesShortMaterial(t *testing.T) {
	if _, err := NewSubjectKey([16]byte{}, make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte subject key was accepted")
	}
}

// Seal refuses what would read as a subject's inner layer.
func TestSealRefusesTheSubjectMarker(t *testing.T) {
	k, _ := NewKeys()
	if _, err := k.Seal([]byte{0, 1, 2}, Cell{}); err == nil {
		t.Fatal("a plaintext starting with a zero byte was sealed")
	}
}
