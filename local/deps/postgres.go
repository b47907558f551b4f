package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	pgSuperuser = "postgres" // initdb -U: the same name whoever runs the server
	pgDatabase  = "skyflow"  // the database URL points at
	// pgMaxConnections is max_connections (PostgreSQL's default is 100):
	// PgBouncer's pgbouncerMaxServerConns (60), plus what connects
	// directly, which are the tests (every test database's pools, of up to
	// 16 each, and the test platforms' own checks), migrations and the
	// platforms' admin work. A slot unused costs some kilobytes of shared
	// memory.
	pgMaxConnections = 300
)

// Postgres is a private PostgreSQL server on 127.0.0.1.
type Postgres struct {
	URL      string // postgres://postgres@127.0.0.1:PORT/skyflow?sslmode=disable
	AdminURL string // the same server's "postgres" database, to create and drop test databases
	Port     int
	DataDir  string // the cluster's files: DIR/data, or a temp dir when root's server user cannot reach DIR
	LogFile  string // the server's output, DIR/postgres.log
	Reused   bool   // it was already running: Stop leaves it alone

	srv *server
	log io.Writer
}

// StartPostgres starts (or reuses) the PostgreSQL server whose files live
// under dir, creating the cluster on first use and the database "skyflow"
// when missing. ctx bounds the start only; the server outlives it.
func StartPostgres(ctx context.Context, dir string, log io.Writer) (*Postgres, error) {
	log = orDiscard(log)
	dir, unlock, err := claimDir(ctx, dir, 0o755, log)
	if err != nil {
		return nil, err
	}
	defer unlock()

	acct, err := postgresAccount(ctx, log)
	if err != nil {
		return nil, err
	}
	dataDir, err := pgDataDir(dir, acct, log)
	if err != nil {
		return nil, err
	}
	p := &Postgres{DataDir: dataDir, LogFile: filepath.Join(dir, "postgres.log"), log: log}

	if port, ok, err := runningPostgres(ctx, dataDir); err != nil {
		return nil, err
	} else if ok {
		p.setPort(port)
		p.Reused = true
		fmt.Fprintf(log, "deps: postgres: reusing the server already running from %s on port %d\n", dataDir, port)
		return p, ensureDatabase(ctx, p.AdminURL)
	}

	if err := prepareDataDir(dataDir, acct); err != nil {
		return nil, err
	}
	major := clusterVersion(dataDir)
	bin, err := findPostgres(major)
	if err != nil {
		return nil, err
	}
	if major == 0 {
		if err := initCluster(ctx, bin, dataDir, acct, log); err != nil {
			return nil, err
		}
	}
	for range 3 {
		port, err := choosePort(dir, "postgres", log)
		if err != nil {
			return nil, err
		}
		p.setPort(port)
		err = p.start(ctx, bin, acct)
		if errors.Is(err, errPortTaken) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := ensureDatabase(ctx, p.AdminURL); err != nil {
			_ = p.Stop(context.WithoutCancel(ctx))
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("deps: postgres: the chosen ports kept being taken by other programs; see %s", p.LogFile)
}

func (p *Postgres) setPort(port int) {
	p.Port = port
	p.URL = pgURL(port, pgDatabase)
	p.AdminURL = pgURL(port, "postgres")
}

func pgURL(port int, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(pgSuperuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// start runs postgres on p.Port and waits until it answers. The settings go
// on the command line so they hold even for a cluster made by hand: loopback
// only, no Unix socket (Debian's default socket directory belongs to the
// system server), and room for PgBouncer's pools beside the tests' direct
// connections.
func (p *Postgres) start(ctx context.Context, bin pgBin, acct account) error {
	offset := fileSize(p.LogFile)
	fmt.Fprintf(p.log, "deps: postgres %d: starting on 127.0.0.1:%d, data in %s, log in %s\n", bin.major, p.Port, p.DataDir, p.LogFile)
	srv, err := startServer("postgres", bin.path("postgres"), []string{
		"-D", p.DataDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(p.Port),
		"-c", "unix_socket_directories=",
		"-c", "max_connections=" + strconv.Itoa(pgMaxConnections),
	}, acct.cred, p.LogFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if err := pgPing(ctx, p.AdminURL); err == nil {
			p.srv = srv
			return nil
		}
		select {
		case <-srv.done:
			if strings.Contains(logSince(p.LogFile, offset, 50), "Address already in use") {
				return errPortTaken
			}
			return failure("postgres", fmt.Sprintf("exited while starting (%v)", srv.err), p.LogFile, offset)
		case <-ctx.Done():
			_ = srv.stop(context.WithoutCancel(ctx), syscall.SIGQUIT)
			return failure("postgres", fmt.Sprintf("did not answer on port %d within %s (%v)", p.Port, readyTimeout, ctx.Err()), p.LogFile, offset)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop shuts down a server this process started, with PostgreSQL's fast
// shutdown (SIGINT, what `pg_ctl stop -m fast` sends: roll back open
// transactions, checkpoint, exit). A reused server is left running.
func (p *Postgres) Stop(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.srv.shutdown(ctx, syscall.SIGINT, p.log, p.Port)
}

// Done is closed when a server this process started exits; it is nil (never
// ready) for a reused one.
func (p *Postgres) Done() <-chan struct{} {
	return p.srv.doneChan()
}

// initCluster runs initdb. Trust authentication is safe only because the
// server listens on 127.0.0.1 and pg_hba.conf admits nothing else.
func initCluster(ctx context.Context, bin pgBin, dataDir string, acct account, log io.Writer) error {
	fmt.Fprintf(log, "deps: postgres %d: creating a new cluster in %s\n", bin.major, dataDir)
	cmd := execAs(ctx, acct, bin.path("initdb"), "-D", dataDir, "-U", pgSuperuser,
		"-E", "UTF8", "--no-locale", "--auth=trust")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("deps: initdb %s failed (%w):\n%s", dataDir, err, indent(strings.TrimSpace(string(out))))
	}
	hba := "# Written by skyflow local/deps: trust, on loopback only.\n" +
		"host all all 127.0.0.1/32 trust\n"
	if err := writeOwned(filepath.Join(dataDir, "pg_hba.conf"), []byte(hba), acct); err != nil {
		return fmt.Errorf("deps: write pg_hba.conf: %w", err)
	}
	return nil
}

// clusterVersion returns the major version recorded in PG_VERSION, or 0 when
// the directory holds no cluster yet.
func clusterVersion(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// runningPostgres reports the port of a server already running from dataDir,
// judged by postmaster.pid and by the server answering with that very data
// directory. One still starting up or shutting down is waited for.
func runningPostgres(ctx context.Context, dataDir string) (int, bool, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false, nil
	}
	// Lines: pid, data dir, start time, port, socket dir, listen address, ...
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false, nil
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, _ := strconv.Atoi(strings.TrimSpace(lines[3]))
	if !pidIs(pid, "postgres") {
		return 0, false, nil // stale: postgres clears it itself at start
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if same, err := pgDataDirIs(ctx, pgURL(port, "postgres"), dataDir); err == nil {
			if !same {
				return 0, false, fmt.Errorf("deps: postgres pid %d holds %s but port %d is served by another cluster; stop pid %d (kill -INT %d)", pid, dataDir, port, pid, pid)
			}
			return port, true, nil
		}
		if !pidAlive(pid) {
			return 0, false, nil
		}
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("deps: a postgres (pid %d) is running from %s but does not answer on port %d; stop it (kill -INT %d) and try again", pid, dataDir, port, pid)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func pgConnect(ctx context.Context, url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return pgx.Connect(ctx, url)
}

func pgPing(ctx context.Context, url string) error {
	c, err := pgConnect(ctx, url)
	if err != nil {
		return err
	}
	return c.Close(context.WithoutCancel(ctx))
}

func pgDataDirIs(ctx context.Context, url, dataDir string) (bool, error) {
	c, err := pgConnect(ctx, url)
	if err != nil {
		return false, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var got string
	if err := c.QueryRow(ctx, "SHOW data_directory").Scan(&got); err != nil {
		return false, err
	}
	return sameDir(got, dataDir), nil
}

func sameDir(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// ensureDatabase creates the database "skyflow" when missing.
func ensureDatabase(ctx context.Context, adminURL string) error {
	c, err := pgConnect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("deps: postgres: connect to create database %s: %w", pgDatabase, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", pgDatabase).Scan(&exists); err != nil {
		return fmt.Errorf("deps: postgres: look up database %s: %w", pgDatabase, err)
	}
	if exists {
		return nil
	}
	_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{pgDatabase}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // 42P04: created meanwhile
		return fmt.Errorf("deps: postgres: create database %s: %w", pgDatabase, err)
	}
	return nil
}
