package platform

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// The local platform's administrator: made once through BootstrapAdmin,
// its key kept in DevDir/admin-api-key (0600) and reused while it works;
// a removed file or a revoked key gets a new key for the same
// administrator, and a revoked administrator a new one.
func TestPlatformBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Database(t)
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, prefix := testenv.Redis(t)
	devDir := t.TempDir()
	file := filepath.Join(devDir, AdminKeyFile)
	start := func() string { // what each start of the platform does
		t.Helper()
		p := &Platform{cfg: Config{DevDir: devDir, RedisPrefix: prefix}, databaseURL: dbURL, redisURL: testenv.RedisURL(t)}
		if err := p.bootstrapAdmin(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) != p.AdminAPIKey() {
			t.Fatalf("%s does not hold the platform's key", file)
		}
		if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %#o, want 0600", file, fi.Mode().Perm())
		}
		return p.AdminAPIKey()
	}
	principal := func(key string) string {
		t.Helper()
		p, err := (&identity.Backend{Pool: pool}).Authenticate(ctx, key)
		if err != nil {
			t.Fatalf("the key does not authenticate: %v", err)
		}
		if !p.Has(policy.PlatformAdmin) {
			t.Fatalf("%s does not hold the role admin: %v", p.ID, p.Roles)
		}
		return p.ID
	}
	accounts := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM service_accounts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	key := start()
	admin := principal(key)
	if again := start(); again != key {
		t.Fatal("a second start replaced a key that works")
	}

	os.Remove(file)
	key2 := start()
	if key2 == key || principal(key2) != admin || accounts() != 1 {
		t.Fatalf("after the file was removed: a new key for %s, want one for %s, %d service accounts", principal(key2), admin, accounts())
	}

	if _, err := pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	key3 := start()
	if key3 == key2 || principal(key3) != admin || accounts() != 1 {
		t.Fatalf("after the key was revoked: a key for %s, want a new one for %s, %d service accounts", principal(key3), admin, accounts())
	}

	if _, err := pool.Exec(ctx, `UPDATE service_accounts SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	key4 := start()
	if principal(key4) == admin || accounts() != 2 {
		t.Fatalf("after the administrator was revoked: a key for %s, want a new administrator, %d service accounts", principal(key4), accounts())
	}
}

// An administrator the platform did not make (here a user) and no key
// file: nothing is made, no file is left, and the error says what to do.
func TestPlatformBootstrapAdminFindsAnotherAdministrator(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Database(t)
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	id := uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, display_name) VALUES ($1, 'ada@example.com', 'x', 'Ada')`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO role_assignments (principal, role, granted_by) VALUES ($1, 'admin', 'test')`, "user:"+id); err != nil {
		t.Fatal(err)
	}
	devDir := t.TempDir()
	p := &Platform{cfg: Config{DevDir: devDir}, databaseURL: dbURL, redisURL: testenv.RedisURL(t)}
	err = p.bootstrapAdmin(ctx)
	if err == nil || !strings.Contains(err.Error(), "an administrator exists already (user:"+id+")") || !strings.Contains(err.Error(), "put an API key of one in") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(devDir, AdminKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a key file was left: %v", err)
	}
}
