package crypto

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

func newTestKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var cell = Cell{VaultID: "v1", Table: "persons", Column: "ssn", RecordID: "r1"}

func TestSealOpenRoundTrip(t *testing.T) {
	k := newTestKeys(t)
	for _, pt := range [][]byte{nil, {}, []byte("123-45-6789"), bytes.Repeat([]byte{0xff, 0}, 4096)} {
		ct, err := k.Seal(pt, cell)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 0 && bytes.Contains(ct, pt) {
			t.Errorf("ciphertext contains plaintext")
		}
		got, err := k.Open(ct, cell)
		if err != nil {
			t.Fatalf("Open(%d bytes): %v", len(pt), err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open = %x, want %x", got, pt)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	k := newTestKeys(t)
	a, _ := k.Seal([]byte("x"), cell)
	b, _ := k.Seal([]byte("x"), cell)
	if bytes.Equal(a, b) {
		t.Error("two Seals of one value are equal; want a fresh nonce each time")
	}
}

func TestOpenOtherCellFails(t *testing.T) {
	k := newTestKeys(t)
	ct, err := k.Seal([]byte("secret"), cell)
	if err != nil {
		t.Fatal(err)
	}
	others := map[string]Cell{
		"vault":  {VaultID: "v2", Table: cell.Table, Column: cell.Column, RecordID: cell.RecordID},
		"table":  {VaultID: cell.VaultID, Table: "people", Column: cell.Column, RecordID: cell.RecordID},
		"column": {VaultID: cell.VaultID, Table: cell.Table, Column: "name", RecordID: cell.RecordID},
		"record": {VaultID: cell.VaultID, Table: cell.Table, Column: cell.Column, RecordID: "r2"},
		// Same concatenation, different split: length prefixes tell them apart.
		"boundary": {VaultID: cell.VaultID, Table: "person", Column: "sssn", RecordID: cell.RecordID},
		"empty":    {},
	}
	for name, c := range others {
		t.Run(name, func(t *testing.T) {
			pt, err := k.Open(ct, c)
			if !errors.Is(err, ErrCellMismatch) {
				t.Fatalf("Open in %+v = %q, %v; want ErrCellMismatch", c, pt, err)
			}
			if err.Error() != "crypto: ciphertext does not open for this cell" {
				t.Errorf("error = %q", err)
			}
		})
	}
}

func TestOpenTamperedFails(t *testing.T) {
	k := newTestKeys(t)
	ct, err := k.Seal([]byte("secret"), cell)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := k.Open(bad, cell); !errors.Is(err, ErrCellMismatch) {
			t.Errorf("bit flip at byte %d: Open err = %v, want ErrCellMismatch", i, err)
		}
	}
	for _, bad := range [][]byte{nil, ct[:len(ct)-1], ct[:5], append(bytes.Clone(ct), 0)} {
		if _, err := k.Open(bad, cell); !errors.Is(err, ErrCellMismatch) {
			t.Errorf("Open(%d bytes) err = %v, want ErrCellMismatch", len(bad), err)
		}
	}
}

func TestOpenWithOtherKeysFails(t *testing.T) {
	ct, err := newTestKeys(t).Seal([]byte("secret"), cell)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newTestKeys(t).Open(ct, cell); !errors.Is(err, ErrCellMismatch) {
		t.Errorf("Open with another vault's keys: err = %v, want ErrCellMismatch", err)
	}
}

func TestRotate(t *testing.T) {
	k := newTestKeys(t)
	old, err := k.Seal([]byte("before"), cell)
	if err != nil {
		t.Fatal(err)
	}
	oldID, ok := KeyID(old)
	if !ok || oldID != k.PrimaryKeyID() {
		t.Fatalf("KeyID(old) = %d, %v; want primary %d", oldID, ok, k.PrimaryKeyID())
	}
	idx, _ := k.BlindIndex("persons", "ssn", []byte("123"))

	if err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	newer, err := k.Seal([]byte("after"), cell)
	if err != nil {
		t.Fatal(err)
	}
	newID, ok := KeyID(newer)
	if !ok || newID == oldID || newID != k.PrimaryKeyID() {
		t.Errorf("after Rotate: KeyID(new) = %d, %v; old %d, primary %d", newID, ok, oldID, k.PrimaryKeyID())
	}
	if got, err := k.Open(old, cell); err != nil || string(got) != "before" {
		t.Errorf("Open(old) after Rotate = %q, %v", got, err)
	}
	if got, err := k.Open(newer, cell); err != nil || string(got) != "after" {
		t.Errorf("Open(new) = %q, %v", got, err)
	}
	// The index key turns too: new digests differ, and BlindIndexes still
	// gives the old one (second) so lookups find rows not yet re-indexed.
	idx2, _ := k.BlindIndex("persons", "ssn", []byte("123"))
	if bytes.Equal(idx, idx2) {
		t.Error("Rotate left the index key as it was")
	}
	all, err := k.BlindIndexes("persons", "ssn", []byte("123"))
	if err != nil || len(all) != 2 || !bytes.Equal(all[0], idx2) || !bytes.Equal(all[1], idx) {
		t.Errorf("BlindIndexes after Rotate = %x, %v; want [new, old]", all, err)
	}
	if len(k.IndexKeyIDs()) != 2 {
		t.Errorf("IndexKeyIDs after Rotate = %v", k.IndexKeyIDs())
	}
	if _, err := k.DestroyOlder(); err != nil {
		t.Fatal(err)
	}
	if all, _ := k.BlindIndexes("persons", "ssn", []byte("123")); len(all) != 1 || !bytes.Equal(all[0], idx2) {
		t.Errorf("BlindIndexes after DestroyOlder = %x; want only the new digest", all)
	}
}

func TestKeyID(t *testing.T) {
	for _, ct := range [][]byte{nil, {1, 2, 3, 4}, {0, 1, 2, 3, 4, 5}} {
		if id, ok := KeyID(ct); ok {
			t.Errorf("KeyID(%x) = %d, true; want false", ct, id)
		}
	}
	if id, ok := KeyID([]byte{1, 0xde, 0xad, 0xbe, 0xef, 9}); !ok || id != 0xdeadbeef {
		t.Errorf("KeyID = %x, %v; want deadbeef, true", id, ok)
	}
}

// TestConcurrentUse runs under -race: Seal, Open, BlindIndex, Wrap and
// Rotate must be safe together.
func TestConcurrentUse(t *testing.T) {
	k := newTestKeys(t)
	kk := testKEK(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				ct, err := k.Seal([]byte{byte(g + 1)}, cell)
				if err != nil {
					t.Error(err)
					return
				}
				if pt, err := k.Open(ct, cell); err != nil || !bytes.Equal(pt, []byte{byte(g + 1)}) {
					t.Errorf("Open = %x, %v", pt, err)
					return
				}
				if _, err := k.BlindIndex("t", "c", []byte{byte(g)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := k.Rotate(); err != nil {
				t.Error(err)
			}
			if _, err := k.Wrap(kk, "v1"); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}
