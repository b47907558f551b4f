package deps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/db"
)

func startPgBouncer(t *testing.T, ctx context.Context, dir string, serverPort int, log *syncBuf) *PgBouncer {
	t.Helper()
	b, err := StartPgBouncer(ctx, dir, serverPort, log)
	if err != nil {
		t.Fatalf("StartPgBouncer: %v\nlog:\n%s", err, log)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b
}

// pooledQuery is pgQuery through PgBouncer: its URLs are for runtime/db.
func pooledQuery(t *testing.T, ctx context.Context, url, sql string) string {
	t.Helper()
	c, err := pooledConnect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer c.Close(ctx)
	var s string
	if err := c.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// pgbouncerShow runs a SHOW command on the admin console and returns its
// rows as column → value.
func pgbouncerShow(t *testing.T, ctx context.Context, b *PgBouncer, what string) []map[string]string {
	t.Helper()
	c, err := pgx.Connect(ctx, b.adminURL())
	if err != nil {
		t.Fatalf("admin console: %v", err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SHOW "+what)
	if err != nil {
		t.Fatalf("SHOW %s: %v", what, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = fmt.Sprint(vals[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("SHOW %s: %v", what, err)
	}
	return out
}

// TestPgBouncerTransactionPooling is the evidence that the functions'
// pools fit through PgBouncer: more than twice as many client connections
// as PostgreSQL's max_connections, each in a transaction at the same moment,
// all succeed, with pgx in the mode runtime/db sets for a pooler, while
// PostgreSQL sees at most one pool's worth of server connections.
func TestPgBouncerTransactionPooling(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 3*time.Minute)
	log := &syncBuf{}
	pg := startPG(t, ctx, reachableDir(t), log)
	b := startPgBouncer(t, ctx, reachableDir(t), pg.Port, log)

	maxConns, err := strconv.Atoi(pgQuery(t, ctx, pg.AdminURL, "SHOW max_connections"))
	if err != nil || maxConns != pgMaxConnections {
		t.Fatalf("max_connections = %d (%v), want %d", maxConns, err, pgMaxConnections)
	}
	cfg := map[string]string{}
	for _, row := range pgbouncerShow(t, ctx, b, "CONFIG") {
		cfg[row["key"]] = row["value"]
	}
	for k, want := range map[string]string{
		"pool_mode":            "transaction",
		"max_client_conn":      strconv.Itoa(pgbouncerMaxClients),
		"default_pool_size":    strconv.Itoa(pgbouncerPoolSize),
		"max_user_connections": strconv.Itoa(pgbouncerMaxServerConns),
		"listen_addr":          "127.0.0.1",
	} {
		if cfg[k] != want {
			t.Errorf("pgbouncer %s = %q, want %q", k, cfg[k], want)
		}
	}
	pgExec(t, ctx, pg.URL, "CREATE TABLE hits (client int PRIMARY KEY, round int NOT NULL, note jsonb)")

	pooled, err := b.Pooled(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Eight processes' pools of 100 connections each.
	const pools, perPool = 8, 100
	clients := pools * perPool
	if clients <= 2*maxConns {
		t.Fatalf("%d clients are not far more than max_connections %d", clients, maxConns)
	}
	var all []*pgxpool.Pool
	for range pools {
		p, err := db.Open(ctx, pooled, db.WithMaxConns(perPool))
		if err != nil {
			t.Fatal(err)
		}
		if p.Config().ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheDescribe {
			t.Fatalf("the pooled URL %q does not set cache_describe", pooled)
		}
		t.Cleanup(p.Close)
		all = append(all, p)
	}
	// Hold every client connection open at once, as busy function
	// processes would.
	conns := make([]*pgxpool.Conn, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range conns {
		wg.Go(func() {
			c, err := all[i%pools].Acquire(ctx)
			if err != nil {
				errs <- fmt.Errorf("client %d: connect: %w", i, err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	checkNoErrors(t, errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Release()
			}
		}
	}()
	var open int32
	for _, p := range all {
		open += p.Stat().TotalConns()
	}
	if int(open) != clients {
		t.Fatalf("%d client connections open, want %d", open, clients)
	}

	// Watch PostgreSQL's side while the transactions run.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan int)
	go func() {
		most := 0
		defer func() { watched <- most }()
		c, err := pgx.Connect(watchCtx, pg.AdminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for watchCtx.Err() == nil {
			var n int
			if c.QueryRow(watchCtx, `SELECT count(*) FROM pg_stat_activity WHERE datname = 'skyflow' AND backend_type = 'client backend'`).Scan(&n) == nil {
				most = max(most, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// Two rounds, so that descriptions pgx cached on a client connection
	// are used on whatever server connection the next transaction gets.
	for round := range 2 {
		start := make(chan struct{})
		for i, c := range conns {
			wg.Go(func() {
				<-start
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO hits (client, round, note) VALUES ($1, $2, $3)
						ON CONFLICT (client) DO UPDATE SET round = excluded.round, note = excluded.note`,
						i, round, map[string]any{"client": i}); err != nil {
						return err
					}
					// Held a moment, so that many transactions overlap.
					if _, err := tx.Exec(ctx, `SELECT pg_sleep($1)`, 0.005); err != nil {
						return err
					}
					var got int
					if err := tx.QueryRow(ctx, `SELECT round FROM hits WHERE client = $1`, i).Scan(&got); err != nil {
						return err
					}
					if got != round {
						return fmt.Errorf("read round %d back as %d", round, got)
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("client %d, round %d: %w", i, round, err)
				}
			})
		}
		close(start)
		wg.Wait()
		checkNoErrors(t, errs)
	}
	stopWatch()
	most := <-watched

	if n := pgQuery(t, ctx, pg.URL, `SELECT count(*)::text FROM hits WHERE round = 1`); n != strconv.Itoa(clients) {
		t.Fatalf("%s clients' rows in round 1, want %d", n, clients)
	}
	if most == 0 || most > pgbouncerPoolSize {
		t.Errorf("PostgreSQL had at most %d connections to the database, want 1 to %d (default_pool_size)", most, pgbouncerPoolSize)
	}
	t.Logf("%d client connections, %d transactions, max_connections %d: at most %d server connections", clients, 2*clients, maxConns, most)

	// Abandoned queries: pgx would send a cancel request for each, which
	// PgBouncer before 1.21 may crash on; the pooled URL says not to.
	for _, c := range conns {
		c.Release()
	}
	conns = nil
	offset := fileSize(b.LogFile)
	for i := range 40 {
		wg.Go(func() {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if _, err := all[i%pools].Exec(short, `SELECT pg_sleep($1)`, 2); err == nil {
				errs <- fmt.Errorf("abandoned query %d succeeded", i)
			}
		})
	}
	wg.Wait()
	checkNoErrors(t, errs)
	time.Sleep(500 * time.Millisecond) // pgx sends cancel requests in the background
	if logged := logSince(b.LogFile, offset, 1000); !b.cancelSafe && strings.Contains(logged, "cancel request") {
		t.Errorf("PgBouncer %s got cancel requests:\n%s", b.Version, logged)
	}
	if err := pgPing(ctx, b.adminURL()); err != nil {
		t.Fatalf("PgBouncer after the abandoned queries: %v\n%s", err, logSince(b.LogFile, offset, 20))
	}
	var n int
	if err := all[0].QueryRow(ctx, `SELECT count(*) FROM hits`).Scan(&n); err != nil || n != clients {
		t.Fatalf("after the abandoned queries: %d rows, %v", n, err)
	}
}

func checkNoErrors(t *testing.T, errs chan error) {
	t.Helper()
	n := 0
	for {
		select {
		case err := <-errs:
			if n < 5 {
				t.Error(err)
			}
			n++
		default:
			if n > 0 {
				t.Fatalf("%d failed", n)
			}
			return
		}
	}
}

func TestPgBouncerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	log := &syncBuf{}
	pg := startPG(t, ctx, reachableDir(t), log)
	dir := reachableDir(t)

	b1 := startPgBouncer(t, ctx, dir, pg.Port, log)
	if b1.Reused || b1.ServerPort != pg.Port || b1.ConfFile != filepath.Join(dir, "pgbouncer.ini") || b1.LogFile != filepath.Join(dir, "pgbouncer.log") {
		t.Fatalf("first start: %+v", b1)
	}
	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/skyflow?default_query_exec_mode=cache_describe&sslmode=disable", b1.Port)
	if !b1.cancelSafe {
		want = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/skyflow?default_query_exec_mode=cache_describe&skyflow_cancel_requests=off&sslmode=disable", b1.Port)
	}
	if b1.URL("skyflow") != want {
		t.Fatalf("URL = %q, want %q", b1.URL("skyflow"), want)
	}
	pid := b1.srv.cmd.Process.Pid
	if mustPgid(t, pid) != pid {
		t.Fatalf("pgbouncer pid %d is not leading its own process group", pid)
	}
	if os.Geteuid() == 0 {
		if st, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil || st.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Fatalf("as root pgbouncer must run as the server's user (%v)", err)
		}
	}
	if limits, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits"); err == nil {
		for _, line := range strings.Split(string(limits), "\n") {
			if f := strings.Fields(line); strings.HasPrefix(line, "Max open files") && len(f) >= 5 {
				soft, _ := strconv.Atoi(f[3])
				hard, _ := strconv.Atoi(f[4])
				if soft < min(hard, pgbouncerMaxClients) {
					t.Errorf("pgbouncer may open %d files (hard limit %d): too few for %d clients", soft, hard, pgbouncerMaxClients)
				}
			}
		}
	}
	// Any database name reaches the database of that name.
	pgExec(t, ctx, pg.AdminURL, "CREATE DATABASE other")
	if got := pooledQuery(t, ctx, b1.URL("other"), "SELECT current_database()"); got != "other" {
		t.Fatalf("through pgbouncer: current_database() = %q", got)
	}
	if port, err := pgbouncerServerPort(ctx, b1.URL("postgres")); err != nil || port != pg.Port {
		t.Fatalf("server port %d (%v), want %d", port, err, pg.Port)
	}

	// A second start reuses it, and its Stop is a no-op.
	b2 := startPgBouncer(t, ctx, dir, pg.Port, log)
	if !b2.Reused || b2.Port != b1.Port || b2.Done() != nil {
		t.Fatalf("second start: %+v", b2)
	}
	if err := b2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pgPing(ctx, b1.adminURL()); err != nil {
		t.Fatalf("after the reuser's Stop: %v", err)
	}
	// Reusing it for another PostgreSQL would route to the wrong server.
	if _, err := StartPgBouncer(ctx, dir, pg.Port+1, log); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pools PostgreSQL on port %d, not %d", pg.Port, pg.Port+1)) {
		t.Fatalf("reuse for another server: %v", err)
	}

	if err := b1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b1.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := pgPing(ctx, b1.adminURL()); err == nil {
		t.Fatal("pgbouncer still answers after Stop")
	}

	// Restart: the remembered port; a stale pid file is not a running one.
	b3 := startPgBouncer(t, ctx, dir, pg.Port, log)
	if b3.Reused || b3.Port != b1.Port {
		t.Fatalf("restart: %+v (first port %d)", b3, b1.Port)
	}
	if got := pooledQuery(t, ctx, b3.URL("skyflow"), "SELECT current_database()"); got != "skyflow" {
		t.Fatalf("after restart: %q", got)
	}
}

func TestPooledURL(t *testing.T) {
	b := &PgBouncer{Port: 6432, ServerPort: 5433, cancelSafe: true}
	got, err := b.Pooled("postgres://postgres@127.0.0.1:5433/skyflow_test_x?sslmode=disable")
	if want := "postgres://postgres@127.0.0.1:6432/skyflow_test_x?default_query_exec_mode=cache_describe&sslmode=disable"; err != nil || got != want {
		t.Fatalf("Pooled = %q, %v; want %q", got, err, want)
	}
	// A PgBouncer that crashes on cancel requests gets none.
	b.cancelSafe = false
	got, err = b.Pooled("postgres://postgres@127.0.0.1:5433/skyflow_test_x?sslmode=disable&pool_max_conns=2")
	if want := "postgres://postgres@127.0.0.1:6432/skyflow_test_x?default_query_exec_mode=cache_describe&pool_max_conns=2&skyflow_cancel_requests=off&sslmode=disable"; err != nil || got != want {
		t.Fatalf("Pooled = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{
		"postgres://postgres@127.0.0.1:5999/x",   // another server
		"postgres://postgres@db.example.com/x",   // another host
		"host=127.0.0.1 port=5433 dbname=x",      // keyword/value
		"postgres://postgres@127.0.0.1:5433/%zz", // does not parse
	} {
		if got, err := b.Pooled(bad); err == nil {
			t.Errorf("Pooled(%q) = %q, want an error", bad, got)
		}
	}
}

func TestPooledFromEnv(t *testing.T) {
	direct := "postgres://postgres@127.0.0.1:5433/skyflow_test_x?sslmode=disable"
	t.Setenv(TestDatabaseEnv, "")
	t.Setenv(TestPgBouncerEnv, "")
	if got, ok := PooledFromEnv(direct); ok || got != direct {
		t.Fatalf("without skyflow deps run: %q, %v", got, ok)
	}
	t.Setenv(TestDatabaseEnv, "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable")
	t.Setenv(TestPgBouncerEnv, "postgres://postgres@127.0.0.1:6432/postgres?default_query_exec_mode=cache_describe&skyflow_cancel_requests=off&sslmode=disable")
	got, ok := PooledFromEnv(direct)
	if want := "postgres://postgres@127.0.0.1:6432/skyflow_test_x?default_query_exec_mode=cache_describe&skyflow_cancel_requests=off&sslmode=disable"; !ok || got != want {
		t.Fatalf("PooledFromEnv = %q, %v; want %q", got, ok, want)
	}
	// A database on another server (DATABASE_URL of the developer's own)
	// is left alone.
	other := "postgres://app@db.example.com:5432/vault"
	if got, ok := PooledFromEnv(other); ok || got != other {
		t.Fatalf("another server: %q, %v", got, ok)
	}
}

func TestPgBouncerVersion(t *testing.T) {
	bin, err := findPgBouncer()
	if err != nil {
		t.Fatal(err)
	}
	v, safe, err := pgbouncerVersion(bin)
	if err != nil || v == "" {
		t.Fatalf("pgbouncerVersion: %q, %v", v, err)
	}
	t.Logf("PgBouncer %s, cancel requests safe: %v", v, safe)
	if strings.HasPrefix(v, "1.18.") && safe {
		t.Fatal("1.18 crashes on abandoned cancel requests (pgbouncer#801)")
	}
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{"PgBouncer 1.18.0\nlibevent 2.1.12-stable", false},
		{"PgBouncer 1.20.1", false},
		{"PgBouncer 1.21.0", true},
		{"PgBouncer 1.24.1", true},
		{"PgBouncer 2.0", true},
	} {
		script := filepath.Join(t.TempDir(), "pgbouncer")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' '"+tc.out+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, safe, err := pgbouncerVersion(script); err != nil || safe != tc.want {
			t.Errorf("%q: cancel-safe %v (%v), want %v", tc.out, safe, err, tc.want)
		}
	}
}
