package testenv_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDatabaseIsMigratedAndDroppedAfterTheTest(t *testing.T) {
	var name string
	t.Run("test using a database", func(t *testing.T) {
		url := testenv.Database(t)
		conn, err := pgx.Connect(testContext(t), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var applied int
		if err := conn.QueryRow(testContext(t), `SELECT current_database(), count(*) FROM schema_migrations GROUP BY 1`).Scan(&name, &applied); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		if applied == 0 || !strings.HasPrefix(name, "skyflow_test_") {
			t.Errorf("database %q has %d migrations, want a skyflow_test_ database with all of them", name, applied)
		}
		// A connection left open must not stop the drop.
	})

	admin, err := pgx.Connect(testContext(t), os.Getenv(testenv.DatabaseURLEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(testContext(t), `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test", name)
	}
}

func TestDatabasesAreDistinct(t *testing.T) {
	if a, b := testenv.Database(t), testenv.Database(t); a == b {
		t.Errorf("two calls returned the same database %s", a)
	}
}

func TestEmptyDatabaseHasNoMigrations(t *testing.T) {
	conn, err := pgx.Connect(testContext(t), testenv.EmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(testContext(t), `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("EmptyDatabase ran migrations")
	}
}

func TestPoolReachesAMigratedDatabase(t *testing.T) {
	pool := testenv.Pool(t)
	var n int
	if err := pool.QueryRow(testContext(t), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatalf("query outbox: %v", err)
	}
}

func TestRedisKeysUnderThePrefixAreDeletedAfterTheTest(t *testing.T) {
	outside, outsidePrefix := testenv.Redis(t)
	keep := outsidePrefix + "keep"
	if err := outside.Set(testContext(t), keep, "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	var prefix string
	t.Run("test using redis", func(t *testing.T) {
		var client *redis.Client
		client, prefix = testenv.Redis(t)
		if prefix == outsidePrefix {
			t.Fatalf("two tests got the same prefix %q", prefix)
		}
		for i := range 1200 { // more than one SCAN/UNLINK batch
			if err := client.Set(testContext(t), fmt.Sprintf("%sk%d", prefix, i), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})

	left, err := outside.Keys(testContext(t), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d keys under %s left after the test", len(left), prefix)
	}
	if n, err := outside.Exists(testContext(t), keep).Result(); err != nil || n != 1 {
		t.Errorf("a key of another test was deleted (exists %d, %v)", n, err)
	}
}

// fatalTB records a test's Fatal or Skip instead of ending the real test.
type fatalTB struct {
	testing.TB
	fatal   string
	skipped bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...); runtime.Goexit() }

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalTB) Skip(...any)          { f.skipped = true; runtime.Goexit() }
func (f *fatalTB) Skipf(string, ...any) { f.skipped = true; runtime.Goexit() }
func (f *fatalTB) SkipNow()             { f.skipped = true; runtime.Goexit() }

// run calls fn with a fatalTB in its own goroutine, as Goexit requires.
func run(t *testing.T, fn func(testing.TB)) *fatalTB {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not return")
	}
	return f
}

func TestMissingVariableFailsAndSaysToRunMakeTest(t *testing.T) {
	helpers := map[string]func(testing.TB){
		testenv.DatabaseURLEnv: func(tb testing.TB) { testenv.Database(tb) },
		testenv.RedisURLEnv:    func(tb testing.TB) { testenv.Redis(tb) },
	}
	for name, helper := range helpers {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, "")
			f := run(t, helper)
			if f.skipped {
				t.Error("helper skipped the test; it must fail")
			}
			if !strings.Contains(f.fatal, name) || !strings.Contains(f.fatal, "make test") {
				t.Errorf("failure message %q should name %s and say to run make test", f.fatal, name)
			}
		})
	}
}
