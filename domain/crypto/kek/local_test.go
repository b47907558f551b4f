package kek

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randomKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewLocalKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewLocal(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "exactly 32") {
			t.Errorf("NewLocal(%d bytes) err = %v, want a length error", n, err)
		}
	}
}

func TestLocalRoundTrip(t *testing.T) {
	key := randomKey(t)
	k, err := NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(key)
	if want := "local:" + hex.EncodeToString(sum[:])[:8]; k.ID() != want {
		t.Errorf("ID = %q, want %q", k.ID(), want)
	}
	testAEAD(t, k)

	other, _ := NewLocal(randomKey(t))
	ct, _ := k.Encrypt([]byte("keyset"), []byte("ad"))
	if _, err := other.Decrypt(ct, []byte("ad")); err == nil {
		t.Error("another key decrypted")
	}
}

// testAEAD checks any KEK: round trip, fresh ciphertexts, and associated
// data bound, with errors that never echo the plaintext.
func testAEAD(t *testing.T, k KEK) {
	t.Helper()
	pt := []byte("plaintext keyset bytes")
	ad := []byte("skyflow/vault/v1/values")
	ct, err := k.Encrypt(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, pt) {
		t.Error("ciphertext contains plaintext")
	}
	if ct2, _ := k.Encrypt(pt, ad); bytes.Equal(ct, ct2) {
		t.Error("two encryptions are equal; want random nonces")
	}
	got, err := k.Decrypt(ct, ad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("skyflow/vault/v2/values")} {
		got, err := k.Decrypt(ct, bad)
		if err == nil {
			t.Errorf("Decrypt with associated data %q succeeded: %q", bad, got)
			continue
		}
		if strings.Contains(err.Error(), string(pt)) {
			t.Errorf("error echoes plaintext: %v", err)
		}
	}
	if empty, err := k.Encrypt(nil, ad); err != nil {
		t.Errorf("Encrypt(empty): %v", err)
	} else if got, err := k.Decrypt(empty, ad); err != nil || len(got) != 0 {
		t.Errorf("Decrypt(empty) = %q, %v", got, err)
	}
}

func TestEnsureKeyFileCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "master.key")
	key, err := EnsureKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize || bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatalf("key = %x", key)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %04o, want 0700", di.Mode().Perm())
	}
	again, err := EnsureKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, key) {
		t.Error("second call returned a different key")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the key (no temporary files)", len(ents))
	}
}

func TestEnsureKeyFileRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // beat the umask
			t.Fatal(err)
		}
		return p
	}
	key := randomKey(t)
	for name, tc := range map[string]struct {
		path string
		want []string
	}{
		"0644":   {write("open.key", key, 0o644), []string{"0644", "chmod 600"}},
		"0640":   {write("group.key", key, 0o640), []string{"chmod 600"}},
		"short":  {write("short.key", key[:10], 0o600), []string{"holds 10 bytes", "exactly 32"}},
		"base64": {write("b64.key", []byte(strings.Repeat("QUJD", 11)), 0o600), []string{"more than 32", "base64"}},
		"empty":  {write("empty.key", nil, 0o600), []string{"holds 0 bytes"}},
		"dir":    {dir, []string{"not a regular file"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := EnsureKeyFile(tc.path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, tc.path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), hex.EncodeToString(key)) || strings.Contains(err.Error(), string(key)) {
				t.Error("error echoes key material")
			}
		})
	}
}
