package kek

import (
	"bytes"
	"path/filepath"
	"testing"
)

// During a rotation the ring encrypts with the new master key and
// decrypts what either key encrypted; For finds a member by its ID.
func TestPreviousMasterKeysMakeARing(t *testing.T) {
	dir := t.TempDir()
	oldFile, newFile := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	for _, f := range []string{oldFile, newFile} {
		if _, err := EnsureKeyFile(f); err != nil {
			t.Fatal(err)
		}
	}
	old, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY_FILE": oldFile})
	if err != nil {
		t.Fatal(err)
	}
	k, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY_FILE": newFile, "SKYFLOW_PREVIOUS_MASTER_KEY_FILES": oldFile})
	if err != nil {
		t.Fatal(err)
	}
	ring, ok := k.(*Ring)
	if !ok || ring.ID() == old.ID() || ring.Current().ID() != ring.ID() {
		t.Fatalf("not a ring of the new key: %T %s", k, k.ID())
	}
	ad := []byte("ad")
	before, _ := old.Encrypt([]byte("keyset"), ad)
	if pt, err := ring.Decrypt(before, ad); err != nil || !bytes.Equal(pt, []byte("keyset")) {
		t.Fatalf("the ring does not open the old key's ciphertext: %v", err)
	}
	after, _ := ring.Encrypt([]byte("keyset"), ad)
	if _, err := old.Decrypt(after, ad); err == nil {
		t.Fatal("the ring encrypted with the old key")
	}
	if m, ok := ring.For(old.ID()); !ok || m.ID() != old.ID() {
		t.Fatal("For does not find the previous key")
	}
	if _, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY_FILE": newFile, "SKYFLOW_PREVIOUS_MASTER_KEY_FILES": filepath.Join(dir, "missing.key")}); err == nil {
		t.Fatal("a missing previous key file was accepted")
	}
}
