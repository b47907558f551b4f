package deps

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// TestMain installs what is missing first (as root, with apt-get), so the
// tests below always run against real servers.
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err := EnsureInstalled(ctx, os.Stderr)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// syncBuf is a log writer the tests read while servers may still write.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reachableDir is a t.TempDir that the postgres user can enter: the testing
// package makes its parent mode 700, which would force the fallback.
func reachableDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.Chmod(filepath.Dir(d), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func startPG(t *testing.T, ctx context.Context, dir string, log *syncBuf) *Postgres {
	t.Helper()
	p, err := StartPostgres(ctx, dir, log)
	if err != nil {
		t.Fatalf("StartPostgres: %v\nlog:\n%s", err, log)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	if !strings.HasPrefix(p.DataDir, dir) {
		t.Cleanup(func() { _ = os.RemoveAll(p.DataDir) }) // the fallback is outside t.TempDir
	}
	return p
}

func pgQuery(t *testing.T, ctx context.Context, url, sql string, args ...any) string {
	t.Helper()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer c.Close(ctx)
	var s string
	if err := c.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func pgExec(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustPgid(t *testing.T, pid int) int {
	t.Helper()
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	return pgid
}

func rememberedPort(t *testing.T, dir string) int {
	t.Helper()
	p, err := readPort(filepath.Join(dir, "port"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPostgresLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	dir := reachableDir(t)
	log := &syncBuf{}

	p1 := startPG(t, ctx, dir, log)
	if p1.Reused || p1.Port == 5432 || p1.DataDir != filepath.Join(dir, "data") || p1.LogFile != filepath.Join(dir, "postgres.log") {
		t.Fatalf("first start: %+v", p1)
	}
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/skyflow?sslmode=disable", p1.Port); p1.URL != want {
		t.Fatalf("URL = %q, want %q", p1.URL, want)
	}
	if db := pgQuery(t, ctx, p1.URL, "SELECT current_database()"); db != "skyflow" {
		t.Fatalf("current_database() = %q", db)
	}
	if s := pgQuery(t, ctx, p1.URL, "SHOW listen_addresses"); s != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q", s)
	}
	if s := pgQuery(t, ctx, p1.URL, "SHOW unix_socket_directories"); s != "" {
		t.Fatalf("unix_socket_directories = %q", s)
	}
	// Its own process group: Ctrl-C in the terminal must not reach it.
	if pid := p1.srv.cmd.Process.Pid; mustPgid(t, pid) != pid || pid == syscall.Getpgrp() {
		t.Fatalf("postgres pid %d is not leading its own process group", pid)
	}
	pgExec(t, ctx, p1.URL, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
	// AdminURL is for making and dropping test databases.
	pgExec(t, ctx, p1.AdminURL, "CREATE DATABASE scratch")
	pgExec(t, ctx, p1.AdminURL, "DROP DATABASE scratch")
	if os.Geteuid() == 0 {
		var st syscall.Stat_t
		if err := syscall.Stat(p1.DataDir, &st); err != nil || st.Uid == 0 {
			t.Fatalf("as root the data dir must belong to the server's user: uid %d, %v", st.Uid, err)
		}
	}

	// A second start while the first runs reuses it, and its Stop is a no-op.
	p2 := startPG(t, ctx, dir, log)
	if !p2.Reused || p2.Port != p1.Port || p2.URL != p1.URL || p2.Done() != nil {
		t.Fatalf("second start: %+v", p2)
	}
	if err := p2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if v := pgQuery(t, ctx, p1.URL, "SELECT v FROM kept"); v != "survives" {
		t.Fatalf("after the reuser's Stop: %q", v)
	}

	if err := p1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p1.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := pgPing(ctx, p1.AdminURL); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if got := rememberedPort(t, dir); got != p1.Port {
		t.Fatalf("remembered port %d, want %d", got, p1.Port)
	}

	// Restart: same port, same data.
	p3 := startPG(t, ctx, dir, log)
	if p3.Reused || p3.Port != p1.Port {
		t.Fatalf("restart: %+v (first port %d)", p3, p1.Port)
	}
	if v := pgQuery(t, ctx, p3.URL, "SELECT v FROM kept"); v != "survives" {
		t.Fatalf("after restart: %q", v)
	}
	if err := p3.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Someone else takes the remembered port: another one is chosen and remembered.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p3.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p4 := startPG(t, ctx, dir, log)
	if p4.Reused || p4.Port == p3.Port || rememberedPort(t, dir) != p4.Port {
		t.Fatalf("port taken: %+v, old port %d", p4, p3.Port)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("port %d (remembered in", p3.Port)) {
		t.Fatalf("the log does not say the port moved:\n%s", log)
	}
	if v := pgQuery(t, ctx, p4.URL, "SELECT v FROM kept"); v != "survives" {
		t.Fatalf("after moving port: %q", v)
	}
	if err := p4.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// A server that cannot start yields an error quoting its log.
	conf := filepath.Join(p4.DataDir, "postgresql.conf")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(bytes.Clone(orig), "no_such_setting = on\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = StartPostgres(ctx, dir, log)
	if err == nil || !strings.Contains(err.Error(), "no_such_setting") {
		t.Fatalf("broken config: want an error quoting the log, got %v", err)
	}
}

// TestPostgresConcurrentStart starts one directory from two goroutines at
// once: the lock lets exactly one of them create and start the cluster. As
// root it also runs the fallback, since t.TempDir's parent has mode 700.
func TestPostgresConcurrentStart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	dir := t.TempDir()
	log := &syncBuf{}

	var wg sync.WaitGroup
	got := make([]*Postgres, 2)
	errs := make([]error, 2)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = StartPostgres(ctx, dir, log) })
	}
	wg.Wait()
	for i, p := range got {
		if errs[i] != nil {
			t.Fatalf("start %d: %v\nlog:\n%s", i, errs[i], log)
		}
		t.Cleanup(func() { _ = p.Stop(context.Background()) })
	}
	if got[0].Reused == got[1].Reused || got[0].Port != got[1].Port || got[0].DataDir != got[1].DataDir {
		t.Fatalf("want one fresh start and one reuse of it: %+v, %+v", got[0], got[1])
	}
	if n := strings.Count(log.String(), "creating a new cluster"); n != 1 {
		t.Fatalf("initdb ran %d times:\n%s", n, log)
	}

	want := filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		want = fallbackDataDir(dir, 0)
		t.Cleanup(func() { _ = os.RemoveAll(want) })
		if !strings.Contains(log.String(), "so the data lives in "+want) {
			t.Fatalf("the fallback is not reported:\n%s", log)
		}
	}
	if got[0].DataDir != want {
		t.Fatalf("DataDir = %s, want %s", got[0].DataDir, want)
	}
	if db := pgQuery(t, ctx, got[0].URL, "SELECT current_database()"); db != "skyflow" {
		t.Fatalf("current_database() = %q", db)
	}
	for _, p := range got {
		if err := p.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := pgPing(ctx, got[0].AdminURL); err == nil {
		t.Fatal("server still answers after both Stops")
	}
}

func startRedis(t *testing.T, ctx context.Context, dir string, log *syncBuf) *Redis {
	t.Helper()
	r, err := StartRedis(ctx, dir, log)
	if err != nil {
		t.Fatalf("StartRedis: %v\nlog:\n%s", err, log)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 40*time.Second)
	dir := t.TempDir()
	log := &syncBuf{}

	r1 := startRedis(t, ctx, dir, log)
	if r1.Reused || r1.Port == 6379 || r1.Dir != dir || r1.URL != fmt.Sprintf("redis://127.0.0.1:%d/0", r1.Port) {
		t.Fatalf("first start: %+v", r1)
	}
	if pid := r1.srv.cmd.Process.Pid; mustPgid(t, pid) != pid {
		t.Fatalf("redis pid %d is not leading its own process group", pid)
	}
	c := redisClient(t, r1.URL)
	if err := c.Set(ctx, "k", "survives", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if cfg, err := c.ConfigGet(ctx, "appendonly").Result(); err != nil || cfg["appendonly"] != "yes" {
		t.Fatalf("appendonly = %v, %v", cfg, err)
	}

	r2 := startRedis(t, ctx, dir, log)
	if !r2.Reused || r2.Port != r1.Port || r2.Done() != nil {
		t.Fatalf("second start: %+v", r2)
	}
	if err := r2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("after the reuser's Stop: %v", err)
	}

	if err := r1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := redisDo(ctx, r1.addr(), "PING"); err == nil {
		t.Fatal("server still answers after Stop")
	}

	r3 := startRedis(t, ctx, dir, log)
	if r3.Reused || r3.Port != r1.Port || rememberedPort(t, dir) != r1.Port {
		t.Fatalf("restart: %+v (first port %d)", r3, r1.Port)
	}
	if v, err := redisClient(t, r3.URL).Get(ctx, "k").Result(); err != nil || v != "survives" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
	if err := r3.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r3.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r4 := startRedis(t, ctx, dir, log)
	if r4.Reused || r4.Port == r3.Port || rememberedPort(t, dir) != r4.Port {
		t.Fatalf("port taken: %+v, old port %d", r4, r3.Port)
	}
	if v, err := redisClient(t, r4.URL).Get(ctx, "k").Result(); err != nil || v != "survives" {
		t.Fatalf("after moving port: %q, %v", v, err)
	}
	if err := r4.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUntraversable(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	outer := filepath.Join(base, "outer")
	inner := filepath.Join(outer, "inner")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(outer, 0o700); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	if got := untraversable(inner, nobody, nobody); got != outer {
		t.Fatalf("mode 700 parent: got %q, want %q", got, outer)
	}
	if got := untraversable(inner, uint32(os.Getuid()), uint32(os.Getgid())); got != "" {
		t.Fatalf("owner: got %q", got)
	}
	if err := os.Chmod(outer, 0o711); err != nil {
		t.Fatal(err)
	}
	if got := untraversable(inner, nobody, nobody); got != "" {
		t.Fatalf("mode 711 parent: got %q", got)
	}
	if got := untraversable(filepath.Join(base, "missing"), nobody, nobody); got == "" {
		t.Fatal("a missing directory cannot be entered")
	}
}

func TestFallbackDataDir(t *testing.T) {
	a := fallbackDataDir("/root/src/skyflow/.dev/postgres", 0)
	if a != fallbackDataDir("/root/src/skyflow/.dev/postgres", 0) {
		t.Fatal("not stable")
	}
	if filepath.Dir(a) != os.TempDir() || !strings.HasPrefix(filepath.Base(a), "skyflow-0-") {
		t.Fatalf("unexpected place %s", a)
	}
	if a == fallbackDataDir("/root/other/.dev/postgres", 0) || a == fallbackDataDir("/root/src/skyflow/.dev/postgres", 1000) {
		t.Fatal("different checkouts or users must not share data")
	}
}

func TestPickPostgres(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
	}{
		{"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15},
		{"postgres (PostgreSQL) 17.2", 17},
		{"postgres (PostgreSQL) 9.6.24", 9},
		{"something else", 0},
	} {
		if got, _ := parsePGVersion(tc.out); got != tc.want {
			t.Errorf("parsePGVersion(%q) = %d, want %d", tc.out, got, tc.want)
		}
	}
	cands := []pgBin{{"/a/13", 13}, {"/a/16", 16}, {"/a/15", 15}}
	if b, ok := pickPostgres(cands, 0); !ok || b.major != 16 {
		t.Fatalf("newest: %+v", b)
	}
	if b, ok := pickPostgres(cands, 15); !ok || b.major != 15 {
		t.Fatalf("exact: %+v", b)
	}
	if _, ok := pickPostgres(cands, 14); ok {
		t.Fatal("no 14 installed")
	}
	if _, ok := pickPostgres(cands[:1], 0); ok {
		t.Fatal("13 is too old")
	}
	if b, err := findPostgres(0); err != nil || b.major < minPGMajor {
		t.Fatalf("installed: %+v, %v", b, err)
	}
}

func TestLockDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := &syncBuf{}
	unlock, err := lockDir(testCtx(t, 5*time.Second), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := lockDir(short, dir, log); err == nil {
		t.Fatal("a second holder got the lock")
	}
	if !strings.Contains(log.String(), "waiting for another process") {
		t.Fatalf("no waiting message: %q", log)
	}
	unlock()
	unlock2, err := lockDir(testCtx(t, 5*time.Second), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}

func TestEnsureInstalledIsIdempotent(t *testing.T) {
	var out bytes.Buffer
	if err := EnsureInstalled(testCtx(t, 30*time.Second), &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("nothing to install, yet it printed %q", out.String())
	}
	if _, err := findRedis(); err != nil {
		t.Fatal(err)
	}
}
