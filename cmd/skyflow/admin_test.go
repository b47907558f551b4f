package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if skyflowBinDir != "" {
		os.RemoveAll(skyflowBinDir)
	}
	os.Exit(code)
}

// skyflowBin is this package built once for the tests that run it, in
// skyflowBinDir.
var (
	skyflowBinDir string
	skyflowBin    = sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "skyflow-cmd-test-")
		if err != nil {
			return "", err
		}
		skyflowBinDir = dir
		return buildSkyflow(filepath.Join(dir, "skyflow"))
	})
)

func buildSkyflow(bin string) (string, error) {
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "build: " + e.err.Error() + "\n" + e.out }

type run struct {
	stdout, stderr string
	code           int
}

// admin runs `skyflow admin ARGS…` with DATABASE_URL=dbURL and no K_SINK
// or REDIS_URL, as an operator would against a cluster's database.
func admin(t *testing.T, dbURL string, args ...string) run {
	t.Helper()
	bin, err := skyflowBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"admin"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + dbURL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return run{stdout.String(), stderr.String(), exitCode(err)}
}

func openPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// authenticate resolves key the way the gateway does (identity.Backend's
// Authenticate on the database, the stored SHA-256).
func authenticate(t *testing.T, pool *pgxpool.Pool, key string) (request.Principal, error) {
	t.Helper()
	return (&identity.Backend{Pool: pool}).Authenticate(context.Background(), key)
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// The first run makes one administrator and writes its key, 0600, to the
// file; the key authenticates as an admin; a second run, with the same or
// another file, makes nothing, writes nothing and says so.
func TestAdminBootstrapMakesOneAdministrator(t *testing.T) {
	dbURL := testenv.Database(t)
	pool := openPool(t, dbURL)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "admin-api-key")

	r := admin(t, dbURL, "bootstrap", "-key-file", keyFile)
	if strings.Contains(r.stderr, `unknown command "admin"`) {
		t.Fatal("cmd/skyflow/main.go does not run `skyflow admin` yet")
	}
	if r.code != 0 || !strings.Contains(r.stderr, "administrator sa:") || !strings.Contains(r.stderr, "made") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %#o, want 0600", mode)
	}
	b, _ := os.ReadFile(keyFile)
	key := strings.TrimSuffix(string(b), "\n")
	if key == "" || strings.Contains(key, "\n") {
		t.Fatalf("the key file holds %q, want one line", b)
	}
	if strings.Contains(r.stdout+r.stderr, key) {
		t.Errorf("the key was printed:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
	p, err := authenticate(t, pool, key)
	if err != nil {
		t.Fatalf("the key does not authenticate: %v", err)
	}
	if !p.Has(policy.PlatformAdmin) || !strings.HasPrefix(p.ID, "sa:") {
		t.Fatalf("the key acts as %+v, want a service account with the role admin", p)
	}
	if !strings.Contains(r.stderr, p.ID) {
		t.Errorf("the status does not name %s: %s", p.ID, r.stderr)
	}

	// Again, with the file still there, and with a new file.
	other := filepath.Join(dir, "second")
	for _, f := range []string{keyFile, other} {
		r := admin(t, dbURL, "bootstrap", "-key-file", f)
		if r.code != 0 || !strings.Contains(r.stderr, "an administrator exists already ("+p.ID+")") || !strings.Contains(r.stderr, "none made") {
			t.Fatalf("second run (-key-file %s): exit %d\nstdout: %s\nstderr: %s", f, r.code, r.stdout, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("second run printed on stdout: %q", r.stdout)
		}
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("the second run wrote %s (%v)", other, err)
	}
	if b2, _ := os.ReadFile(keyFile); string(b2) != string(b) {
		t.Error("the second run changed the first key file")
	}
	if n := count(t, pool, `SELECT count(*) FROM service_accounts`); n != 1 {
		t.Errorf("%d service accounts, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM api_keys`); n != 1 {
		t.Errorf("%d API keys, want 1", n)
	}
	// Without K_SINK the events wait, committed, in the outbox.
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND type IN ('com.skyflow.serviceaccount.created', 'com.skyflow.apikey.created')`); n != 2 {
		t.Errorf("%d bootstrap events unsent in the outbox, want 2", n)
	}

	// -reissue: a new key for the same administrator; the first still works.
	reissued := filepath.Join(dir, "reissued")
	r = admin(t, dbURL, "bootstrap", "-reissue", "-key-file", reissued)
	if r.code != 0 || !strings.Contains(r.stderr, "a new API key") {
		t.Fatalf("-reissue: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	b3, err := os.ReadFile(reissued)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := authenticate(t, pool, strings.TrimSpace(string(b3))); err != nil || p2.ID != p.ID {
		t.Fatalf("the reissued key acts as %+v (%v), want %s", p2, err, p.ID)
	}
	if _, err := authenticate(t, pool, key); err != nil {
		t.Errorf("the first key stopped working after -reissue: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM service_accounts`); n != 1 {
		t.Errorf("%d service accounts after -reissue, want 1", n)
	}
}

// An existing key file is never replaced, and the run stops before it
// makes anything.
func TestAdminBootstrapRefusesToOverwrite(t *testing.T) {
	dbURL := testenv.Database(t)
	pool := openPool(t, dbURL)
	keyFile := filepath.Join(t.TempDir(), "admin-api-key")
	if err := os.WriteFile(keyFile, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := admin(t, dbURL, "bootstrap", "-key-file", keyFile)
	if r.code != 1 || !strings.Contains(r.stderr, "exists already: it is not replaced") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(keyFile); string(b) != "precious\n" {
		t.Errorf("the file now holds %q", b)
	}
	if n := count(t, pool, `SELECT count(*) FROM service_accounts`); n != 0 {
		t.Errorf("%d service accounts made by a refused run, want 0", n)
	}
	// Once the file is moved away, the same command works.
	os.Remove(keyFile)
	if r := admin(t, dbURL, "bootstrap", "-key-file", keyFile); r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
}

// -key-file - prints the key, and only the key, on stdout.
func TestAdminBootstrapToStdout(t *testing.T) {
	dbURL := testenv.Database(t)
	pool := openPool(t, dbURL)
	r := admin(t, dbURL, "bootstrap", "-key-file", "-")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "\n") {
		t.Fatalf("exit %d\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	key := strings.TrimSuffix(r.stdout, "\n")
	if strings.Contains(r.stderr, key) {
		t.Errorf("the key is on stderr too: %s", r.stderr)
	}
	if p, err := authenticate(t, pool, key); err != nil || !p.Has(policy.PlatformAdmin) {
		t.Fatalf("the key acts as %+v (%v)", p, err)
	}
}

// Runs at once on one database make one administrator.
func TestAdminBootstrapAtOnceMakesOne(t *testing.T) {
	dbURL := testenv.Database(t)
	pool := openPool(t, dbURL)
	dir := t.TempDir()
	const n = 4
	runs := make([]run, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			runs[i] = admin(t, dbURL, "bootstrap", "-key-file", filepath.Join(dir, "key"+string(rune('a'+i))))
		})
	}
	wg.Wait()
	made := 0
	for _, r := range runs {
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "made; its API key") {
			made++
		}
	}
	files, _ := os.ReadDir(dir)
	if made != 1 || len(files) != 1 {
		t.Fatalf("%d runs made an administrator and %d key files were written, want 1 and 1", made, len(files))
	}
	if c := count(t, pool, `SELECT count(*) FROM service_accounts`); c != 1 {
		t.Fatalf("%d service accounts, want 1", c)
	}
}

// What an operator gets wrong is said plainly: no DATABASE_URL, no
// -key-file, a database not migrated.
func TestAdminBootstrapMistakes(t *testing.T) {
	for _, tc := range []struct {
		db   string
		args []string
		want string
	}{
		{"", []string{"bootstrap", "-key-file", "-"}, "DATABASE_URL is not set"},
		{"postgres://x@127.0.0.1:1/x", []string{"bootstrap"}, "say where the API key goes"},
		{"postgres://x@127.0.0.1:1/x", []string{"frobnicate"}, "usage: skyflow admin bootstrap"},
		{testenv.EmptyDatabase(t), []string{"bootstrap", "-key-file", "-"}, "apply the migrations first (skyflow migrate)"},
	} {
		r := admin(t, tc.db, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%v: exit %d, want 1 and %q\nstdout: %s\nstderr: %s", tc.args, r.code, tc.want, r.stdout, r.stderr)
		}
	}
	if r := admin(t, "", "bootstrap", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-key-file FILE") {
		t.Errorf("-h: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
