package migrate_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/db/migrate"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// shippedMigrations lists the ids of the files in sql/, as Up reports them.
func shippedMigrations(t *testing.T) []string {
	entries, err := os.ReadDir("sql")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, strings.TrimSuffix(e.Name(), ".sql"))
	}
	if len(ids) == 0 {
		t.Fatal("no migrations in sql/")
	}
	return ids
}

func exec(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func tableExists(t *testing.T, url, table string) bool {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestUpAppliesAllMigrationsToFreshDatabase(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	var log strings.Builder
	applied, err := migrate.Up(testContext(t), url, &log)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if want := shippedMigrations(t); !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if !tableExists(t, url, "outbox") {
		t.Error("outbox table missing after Up")
	}
	if !strings.Contains(log.String(), "applied 0001_outbox") {
		t.Errorf("log %q does not report the applied migration", log.String())
	}
	status, err := migrate.Status(testContext(t), url)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, s := range status {
		if s.State != migrate.Applied || s.AppliedAt.IsZero() {
			t.Errorf("status of %s = %s at %v, want applied", s.ID, s.State, s.AppliedAt)
		}
	}
}

func TestStatusOfFreshDatabaseIsAllPending(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	status, err := migrate.Status(testContext(t), url)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(status) != len(shippedMigrations(t)) {
		t.Fatalf("Status listed %d migrations, want %d", len(status), len(shippedMigrations(t)))
	}
	for _, s := range status {
		if s.State != migrate.Pending {
			t.Errorf("status of %s = %s, want pending", s.ID, s.State)
		}
	}
	if tableExists(t, url, "schema_migrations") {
		t.Error("Status created schema_migrations; it must change nothing")
	}
}

func TestSecondUpAppliesNothing(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	if _, err := migrate.Up(testContext(t), url, nil); err != nil {
		t.Fatalf("first Up: %v", err)
	}
	applied, err := migrate.Up(testContext(t), url, nil)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("second Up applied %v, want nothing", applied)
	}
}

func TestConcurrentUpAppliesEachMigrationOnce(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	const runs = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  []string
		errs []error
	)
	for range runs {
		wg.Go(func() {
			applied, err := migrate.Up(testContext(t), url, nil)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, applied...)
			errs = append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Up: %v", err)
	}
	slices.Sort(all)
	if want := shippedMigrations(t); !slices.Equal(all, want) {
		t.Errorf("concurrent runs applied %v in total, want each of %v once", all, want)
	}
}

func TestUpRefusesChangedMigration(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	if _, err := migrate.Up(testContext(t), url, nil); err != nil {
		t.Fatal(err)
	}
	// As if 0001's file had been edited after it was applied.
	exec(t, url, `UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1`)

	_, err := migrate.Up(testContext(t), url, nil)
	if err == nil || !strings.Contains(err.Error(), "0001_outbox has changed") {
		t.Fatalf("Up = %v, want a refusal naming the changed migration", err)
	}
	status, err := migrate.Status(testContext(t), url)
	if err != nil {
		t.Fatal(err)
	}
	if status[0].State != migrate.Changed {
		t.Errorf("status of %s = %s, want changed", status[0].ID, status[0].State)
	}
}

func TestUpRefusesChangedFileAndAppliesNothingElse(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	v1 := fstest.MapFS{"sql/0001_a.sql": {Data: []byte("CREATE TABLE a (x int);")}}
	if _, err := migrate.UpFS(testContext(t), url, v1, nil); err != nil {
		t.Fatal(err)
	}
	v2 := fstest.MapFS{
		"sql/0001_a.sql": {Data: []byte("CREATE TABLE a (x bigint);")},
		"sql/0002_b.sql": {Data: []byte("CREATE TABLE b (x int);")},
	}
	if _, err := migrate.UpFS(testContext(t), url, v2, nil); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("Up with an edited applied file = %v, want a refusal", err)
	}
	if tableExists(t, url, "b") {
		t.Error("a pending migration was applied despite the refusal")
	}
}

func TestUpRefusesMissingMigration(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	if _, err := migrate.Up(testContext(t), url, nil); err != nil {
		t.Fatal(err)
	}
	// As if a newer build had applied a migration this build does not have.
	exec(t, url, `INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', repeat('0', 64))`)

	_, err := migrate.Up(testContext(t), url, nil)
	if err == nil || !strings.Contains(err.Error(), "9999_future has no file") {
		t.Fatalf("Up = %v, want a refusal naming the missing migration", err)
	}
	status, err := migrate.Status(testContext(t), url)
	if err != nil {
		t.Fatal(err)
	}
	if last := status[len(status)-1]; last.ID != "9999_future" || last.State != migrate.Missing {
		t.Errorf("last status = %+v, want 9999_future missing", last)
	}
}

func TestUpAppliesLaterMigrationsOnly(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	a := []byte("CREATE TABLE a (x int);")
	if _, err := migrate.UpFS(testContext(t), url, fstest.MapFS{"sql/0001_a.sql": {Data: a}}, nil); err != nil {
		t.Fatal(err)
	}
	applied, err := migrate.UpFS(testContext(t), url, fstest.MapFS{
		"sql/0001_a.sql": {Data: a},
		"sql/0002_b.sql": {Data: []byte("CREATE TABLE b (x int); INSERT INTO b VALUES (1);")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"0002_b"}) {
		t.Errorf("applied %v, want [0002_b]", applied)
	}
}

func TestFailedMigrationIsRolledBackAndEarlierOnesStay(t *testing.T) {
	url := testenv.EmptyDatabase(t)
	applied, err := migrate.UpFS(testContext(t), url, fstest.MapFS{
		"sql/0001_a.sql": {Data: []byte("CREATE TABLE a (x int);")},
		"sql/0002_b.sql": {Data: []byte("CREATE TABLE b (x int); SELECT no_such_column FROM b;")},
		"sql/0003_c.sql": {Data: []byte("CREATE TABLE c (x int);")},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "0002_b") {
		t.Fatalf("Up = %v, want an error naming 0002_b", err)
	}
	if !slices.Equal(applied, []string{"0001_a"}) {
		t.Errorf("applied %v, want [0001_a]", applied)
	}
	if !tableExists(t, url, "a") || tableExists(t, url, "b") || tableExists(t, url, "c") {
		t.Error("want table a kept, b rolled back, c never created")
	}
}

func TestUpRejectsBadFileNamesBeforeConnecting(t *testing.T) {
	for _, name := range []string{"sql/1_short.sql", "sql/0001-dash.sql", "sql/0001_Upper.sql"} {
		fsys := fstest.MapFS{name: {Data: []byte("SELECT 1;")}}
		// The URL is never used: the files are checked first.
		if _, err := migrate.UpFS(testContext(t), "postgres://nobody@127.0.0.1:1/none", fsys, nil); err == nil || !strings.Contains(err.Error(), "NNNN_name.sql") {
			t.Errorf("Up with %s = %v, want a file name error", name, err)
		}
	}
	dup := fstest.MapFS{"sql/0001_a.sql": {Data: []byte("SELECT 1;")}, "sql/00001_b.sql": {Data: []byte("SELECT 1;")}}
	if _, err := migrate.UpFS(testContext(t), "postgres://nobody@127.0.0.1:1/none", dup, nil); err == nil || !strings.Contains(err.Error(), "same version") {
		t.Errorf("Up with duplicate versions = %v, want an error", err)
	}
}
