package kek

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const vaultA, vaultB = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"

// The contract both stores keep: a key is made on demand, is the same key
// for every later caller, differs per vault, and once destroyed nothing it
// encrypted opens, for this store or a fresh one.
func testVaultKeys(t *testing.T, fresh func() VaultKeys) {
	ctx := context.Background()
	vk := fresh()
	if _, err := vk.For(ctx, "../../etc/passwd", true); err == nil {
		t.Error("a vault id that is a path was accepted")
	}
	a, err := vk.For(ctx, vaultA, true)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := a.Encrypt([]byte("keyset"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := fresh().For(ctx, vaultA, false)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Decrypt(ct, []byte("ad")); err != nil || !bytes.Equal(pt, []byte("keyset")) {
		t.Fatalf("another process's key for the vault: %q, %v", pt, err)
	}
	b, err := vk.For(ctx, vaultB, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(ct, []byte("ad")); err == nil {
		t.Fatal("vault B's key opened vault A's ciphertext")
	}
	if err := vk.Destroy(ctx, vaultA); err != nil {
		t.Fatal(err)
	}
	if err := vk.Destroy(ctx, vaultA); err != nil {
		t.Fatalf("destroying twice: %v", err)
	}
	for name, s := range map[string]VaultKeys{"same store": vk, "fresh store": fresh()} {
		k, err := s.For(ctx, vaultA, false)
		if err == nil {
			_, err = k.Decrypt(ct, []byte("ad"))
		}
		if !errors.Is(err, ErrVaultKeyDestroyed) {
			t.Errorf("%s: opening after the destruction: %v, want ErrVaultKeyDestroyed", name, err)
		}
	}
	if _, err := b.Encrypt([]byte("x"), nil); err != nil {
		t.Errorf("vault B after A's destruction: %v", err)
	}

	// A subject epoch's key is a key of its own: destroying it leaves the
	// vault's key alone.
	for _, bad := range []string{vaultB + "-s0", vaultB + "-s01", vaultB + "-x1", vaultB + "-s1/.."} {
		if _, err := vk.For(ctx, bad, true); err == nil {
			t.Errorf("key name %q was accepted", bad)
		}
	}
	epoch := SubjectEpochKeyID(vaultB, 1)
	e, err := vk.For(ctx, epoch, true)
	if err != nil {
		t.Fatal(err)
	}
	ect, _ := e.Encrypt([]byte("epoch"), nil)
	if _, err := b.Decrypt(ect, nil); err == nil {
		t.Error("the vault's key opened its subject epoch key's ciphertext")
	}
	if err := vk.Destroy(ctx, epoch); err != nil {
		t.Fatal(err)
	}
	if k, err := fresh().For(ctx, epoch, false); err == nil {
		if _, err = k.Decrypt(ect, nil); !errors.Is(err, ErrVaultKeyDestroyed) {
			t.Errorf("the destroyed epoch key still opens: %v", err)
		}
	} else if !errors.Is(err, ErrVaultKeyDestroyed) {
		t.Errorf("the destroyed epoch key: %v", err)
	}
	if _, err := b.Encrypt([]byte("x"), nil); err != nil {
		t.Errorf("vault B after its epoch key's destruction: %v", err)
	}
}

func TestDirVaultKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault-keys")
	testVaultKeys(t, func() VaultKeys {
		vk, err := NewDirVaultKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		return vk
	})
	fi, err := os.Stat(filepath.Join(dir, vaultB+".key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, vaultA+".key")); !os.IsNotExist(err) {
		t.Fatalf("the destroyed key's file: %v", err)
	}
}

func TestTransitVaultKeys(t *testing.T) {
	fake, srv := startFake(t)
	testVaultKeys(t, func() VaultKeys {
		return &transitVaultKeys{client: vaultClient(t, srv.URL, fakeToken), base: "skyflow-kek"}
	})
	if fake.LatestVersion("skyflow-kek-vault-"+vaultA) != 0 || fake.LatestVersion("skyflow-kek-vault-"+vaultB) != 1 {
		t.Fatal("the Transit keys are not one per vault, or the destroyed one is still there")
	}
}
