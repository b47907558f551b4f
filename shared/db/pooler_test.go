package db_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/shared/db"
)

func TestThroughPooler(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mode pgx.QueryExecMode
	}{
		{"postgres://app:pw@pgbouncer:5432/vault?sslmode=disable", pgx.QueryExecModeCacheDescribe},
		{"postgresql://app@pgbouncer/vault", pgx.QueryExecModeCacheDescribe},
		{"host=pgbouncer user=app dbname=vault", pgx.QueryExecModeCacheDescribe},
		// The deployment's own choice is kept.
		{"postgres://app@pgbouncer/vault?default_query_exec_mode=exec", pgx.QueryExecModeExec},
		{"host=pgbouncer default_query_exec_mode=simple_protocol", pgx.QueryExecModeSimpleProtocol},
	} {
		got, err := db.ThroughPooler(tc.in)
		if err != nil {
			t.Fatalf("ThroughPooler(%q): %v", tc.in, err)
		}
		cfg, err := db.ParseConfig(got)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", got, err)
		}
		if cfg.ConnConfig.DefaultQueryExecMode != tc.mode {
			t.Errorf("ThroughPooler(%q) = %q: mode %v, want %v", tc.in, got, cfg.ConnConfig.DefaultQueryExecMode, tc.mode)
		}
		// pgx takes the setting out: it must not reach PgBouncer as a
		// startup parameter, which PgBouncer would refuse.
		if _, ok := cfg.ConnConfig.RuntimeParams["default_query_exec_mode"]; ok {
			t.Errorf("ThroughPooler(%q): default_query_exec_mode is sent to the server", tc.in)
		}
	}
}

func TestThroughPoolerKeepsTheRestOfTheURL(t *testing.T) {
	got, err := db.ThroughPooler("postgres://app:p%40ss@pgbouncer:6432/vault?sslmode=require&pool_max_conns=2")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := db.ParseConfig(got)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.ConnConfig
	if c.Host != "pgbouncer" || c.Port != 6432 || c.User != "app" || c.Password != "p@ss" || c.Database != "vault" || cfg.MaxConns != 2 || c.TLSConfig == nil {
		t.Errorf("ThroughPooler changed the URL: %q", got)
	}
}

func TestThroughPoolerBadURLNeverShowsThePassword(t *testing.T) {
	_, err := db.ThroughPooler("postgres://app:" + secret + "%zz@pgbouncer/vault")
	if err == nil || !errors.Is(err, db.ErrInvalidURL) || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v: want ErrInvalidURL without the password", err)
	}
}
