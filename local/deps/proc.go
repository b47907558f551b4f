package deps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopTimeout bounds a clean shutdown when the caller's context has no
// earlier deadline; after it the server's process group is killed.
const stopTimeout = 30 * time.Second

// server is a process this package started and therefore may stop.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // how it exited; read only after done
}

// startServer runs path in its own process group, so that Ctrl-C in the
// terminal reaches only the Go program, which then stops servers in order.
// Output is appended to logPath; cred (nil for ourselves) sets the user.
func startServer(name, path string, args []string, cred *syscall.Credential, logPath string) (*server, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("deps: open %s log: %w", name, err)
	}
	defer logf.Close() // the child keeps its own copy
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/" // the server user may not be able to enter our working directory
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("deps: start %s (%s): %w", name, path, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// exited reports whether the process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop sends sig (the server's clean, fast shutdown) and waits for the exit.
// When ctx or stopTimeout runs out first it kills the whole process group,
// which holds the server's children too.
// shutdown stops a server this process started with sig, its orderly
// shutdown signal, and says so on log. A nil server, one another process
// started and this one reuses, is left running.
func (s *server) shutdown(ctx context.Context, sig syscall.Signal, log io.Writer, port int) error {
	if s == nil {
		return nil
	}
	err := s.stop(ctx, sig)
	if err == nil {
		fmt.Fprintf(log, "deps: %s: stopped (port %d)\n", s.name, port)
	}
	return err
}

// doneChan is closed when a server this process started exits; it is nil
// (never ready) for a reused one.
func (s *server) doneChan() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.done
}

func (s *server) stop(ctx context.Context, sig syscall.Signal) error {
	if s.exited() {
		return nil
	}
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("deps: stop %s (pid %d): %w", s.name, pid, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	var why string
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		why = ctx.Err().Error()
	case <-timer.C:
		why = "no exit after " + stopTimeout.String()
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("deps: %s (pid %d) did not shut down cleanly (%s), so it was killed; it will recover its data at next start", s.name, pid, why)
}

// serverEnv is our environment without PG* variables, which would otherwise
// steer initdb and postgres (PGDATA, PGPORT, ...) away from our settings.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// pidAlive reports whether a process with this pid exists (EPERM means it
// does, under another user).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// pidIs reports whether pid is alive and its command line mentions name, so
// that a stale pidfile whose pid now belongs to another program (after a
// reboot) is not mistaken for our server. Without /proc it trusts the pid.
func pidIs(pid int, name string) bool {
	if !pidAlive(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !dirExists("/proc/self")
	}
	return bytes.Contains(b, []byte(name))
}

// logSince returns up to the last n lines written to path after offset, to
// put the server's own words into an error.
func logSince(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// readyTimeout bounds how long a server may take to answer after starting
// (or a running one that is still starting up or shutting down).
const readyTimeout = 30 * time.Second

// failure builds a start error that quotes the end of the server's log.
func failure(name, what, logPath string, offset int64) error {
	tail := logSince(logPath, offset, 15)
	if tail == "" {
		return fmt.Errorf("deps: %s %s; its log %s is empty", name, what, logPath)
	}
	return fmt.Errorf("deps: %s %s; the end of its log (%s):\n%s", name, what, logPath, indent(tail))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// execAs prepares a short-lived helper (initdb) as the server's user.
func execAs(ctx context.Context, a account, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: a.cred}
	return cmd
}
