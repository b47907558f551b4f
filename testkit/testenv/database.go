package testenv

import (
	"context"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/db/migrate"
)

// setupTimeout bounds creating, migrating and dropping a test database.
const setupTimeout = 60 * time.Second

// Database creates a database with a random name on the server named by
// SKYFLOW_TEST_DATABASE_URL, applies all migrations to it, and returns its
// URL. The database is dropped, with any connections still open to it, when
// the test ends.
func Database(t testing.TB) string {
	t.Helper()
	dbURL := EmptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, err := migrate.Up(ctx, dbURL, io.Discard); err != nil {
		t.Fatalf("testenv: migrate: %v", err)
	}
	return dbURL
}

// EmptyDatabase is [Database] without the migrations, for tests of the
// migrations themselves.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	admin := env(t, DatabaseURLEnv, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	name := randomName("skyflow_test_")
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: %s: %v", DatabaseURLEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// Pool returns a pool on a fresh database made by [Database]; the pool is
// closed before the database is dropped.
func Pool(t testing.TB, opts ...db.Option) *pgxpool.Pool {
	t.Helper()
	dbURL := Database(t)
	pool, err := db.Open(context.Background(), dbURL, opts...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close) // runs before Database's cleanup: cleanups are LIFO
	return pool
}

func adminExec(ctx context.Context, admin, sql string) error {
	cfg, err := db.ParseConfig(admin)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns the connection string admin with its database
// replaced by name.
func withDatabase(admin, name string) (string, error) {
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			return "", db.ErrInvalidURL
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value: a later keyword overrides an earlier one.
	return admin + " dbname=" + name, nil
}
