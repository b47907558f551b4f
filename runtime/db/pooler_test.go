package db_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
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

func TestCancelRequestsParam(t *testing.T) {
	for _, url := range []string{
		"postgres://app@pgbouncer/vault?skyflow_cancel_requests=off",
		"host=pgbouncer user=app skyflow_cancel_requests=on",
	} {
		cfg, err := db.ParseConfig(url)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", url, err)
		}
		// Ours, not a server setting: PgBouncer would refuse the login.
		if _, ok := cfg.ConnConfig.RuntimeParams[db.CancelRequestsParam]; ok {
			t.Errorf("ParseConfig(%q) sends %s to the server", url, db.CancelRequestsParam)
		}
	}
	_, err := db.ParseConfig("postgres://app:" + secret + "@pgbouncer/vault?skyflow_cancel_requests=maybe")
	if !errors.Is(err, db.ErrInvalidURL) || !strings.Contains(err.Error(), db.CancelRequestsParam) || strings.Contains(err.Error(), secret) {
		t.Errorf("a bad value: %v", err)
	}
}

// TestNoCancelRequestsSendsNone: with skyflow_cancel_requests=off a
// cancel request pgx makes reaches no server (the connection it opens for
// it stays silent and reads as closed), and any other connection is
// untouched.
func TestNoCancelRequestsSendsNone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				b, _ := io.ReadAll(c)
				received <- b
			}()
		}
	}()
	cfg, err := db.ParseConfig("postgres://app@" + ln.Addr().String() + "/vault?skyflow_cancel_requests=off")
	if err != nil {
		t.Fatal(err)
	}
	dial := cfg.ConnConfig.DialFunc
	ctx := context.Background()

	cancel := make([]byte, 16)
	binary.BigEndian.PutUint32(cancel[0:4], 16)
	binary.BigEndian.PutUint32(cancel[4:8], 80877102)
	c, err := dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write(cancel); err != nil || n != len(cancel) {
		t.Fatalf("write of the cancel request: %d, %v", n, err)
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the cancel request: %d, %v; want EOF", n, err)
	}
	c.Close()
	if got := <-received; len(got) != 0 {
		t.Fatalf("the server received %d bytes of a cancel request", len(got))
	}

	startup := []byte{0, 0, 0, 8, 0, 3, 0, 0}
	c, err = dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(startup); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-received; !bytes.Equal(got, startup) {
		t.Fatalf("the server received %v, want the startup message %v", got, startup)
	}
}

// TestNoCancelRequestsAgainstARealServer: queries work as usual, and an
// abandoned one still ends at once for the caller.
func TestNoCancelRequestsAgainstARealServer(t *testing.T) {
	url := testenv.Database(t) + "&skyflow_cancel_requests=off"
	pool, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := pool.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("query: %d, %v", n, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	if _, err := pool.Exec(short, "SELECT pg_sleep(5)"); err == nil {
		t.Fatal("an abandoned query succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the abandoned query took %v to return", d)
	}
	if err := pool.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("the pool after an abandoned query: %v", err)
	}
}
