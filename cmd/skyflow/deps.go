package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/skyflow-oss/skyflow/local/deps"
)

// runDeps is `skyflow deps run -- CMD…`: private PostgreSQL, its PgBouncer
// and Redis around one command, the way `make test` runs the test suite.
func runDeps(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("deps", flag.ContinueOnError)
	dir := fs.String("dir", "", "where the private instances live (default: <repo>/.dev)")
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: skyflow deps run [-dir DIR] -- CMD [ARG…]")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cmdline := fs.Args()
	if len(cmdline) == 0 {
		return errors.New("usage: skyflow deps run [-dir DIR] -- CMD [ARG…]: no command given")
	}
	if *dir == "" {
		root, err := projectRoot()
		if err != nil {
			return err
		}
		*dir = filepath.Join(root, ".dev")
	}
	if err := deps.EnsureInstalled(ctx, os.Stderr); err != nil {
		return err
	}
	lastUser, err := shareServers(*dir)
	if err != nil {
		return err
	}
	pg, err := deps.StartPostgres(ctx, filepath.Join(*dir, "postgres"), os.Stderr)
	if err != nil {
		return err
	}
	defer stopQuietly(ctx, "PostgreSQL", pg.Stop, lastUser)
	// The platforms the tests start run their functions through it
	// (deps.PooledFromEnv), as `make run` does.
	pb, err := deps.StartPgBouncer(ctx, filepath.Join(*dir, "pgbouncer"), pg.Port, os.Stderr)
	if err != nil {
		return err
	}
	defer stopQuietly(ctx, "PgBouncer", pb.Stop, lastUser)
	rd, err := deps.StartRedis(ctx, filepath.Join(*dir, "redis"), os.Stderr)
	if err != nil {
		return err
	}
	defer stopQuietly(ctx, "Redis", rd.Stop, lastUser)
	fmt.Fprintf(os.Stderr, "skyflow: PostgreSQL on 127.0.0.1:%d (PgBouncer on 127.0.0.1:%d), Redis on 127.0.0.1:%d\n", pg.Port, pb.Port, rd.Port)

	cmd := exec.Command(cmdline[0], cmdline[1:]...) //nolint:gosec // G204: running the caller's command is what deps run is for
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		deps.TestDatabaseEnv+"="+pg.AdminURL,
		deps.TestPgBouncerEnv+"="+pb.URL("postgres"),
		"SKYFLOW_TEST_REDIS_URL="+rd.URL,
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmdline[0], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		// The terminal's Ctrl-C reached the child too; give it time to end.
		_ = cmd.Process.Signal(syscall.SIGTERM) // fails only once it has exited, which waited reports
		select {
		case err = <-waited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill() // likewise
			err = <-waited
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exitError(exit.ExitCode())
	}
	return err
}

// shareServers registers this run as a user of the servers under dir (a
// shared lock held until the process exits), so that two runs at once, say
// `make test` beside a test of one package, share the servers. lastUser
// reports whether no other run still uses them: only then are they
// stopped; otherwise they are left for the next run to reuse.
func shareServers(dir string) (lastUser func() bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: the PostgreSQL user must pass through it to its data directory
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "deps.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	var once sync.Once
	var last bool
	return func() bool {
		once.Do(func() {
			last = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
		})
		return last
	}, nil
}

// stopQuietly stops a server when this run is its last user, within 30s
// even once ctx is done (Ctrl-C), and reports a failure on stderr.
func stopQuietly(ctx context.Context, what string, stop func(context.Context) error, lastUser func() bool) {
	if !lastUser() {
		fmt.Fprintf(os.Stderr, "skyflow: leaving %s running for the other runs using it\n", what)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "skyflow: stopping %s: %v\n", what, err)
	}
}
