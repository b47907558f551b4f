package deps

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Redis is a private Redis server on 127.0.0.1.
type Redis struct {
	URL     string // redis://127.0.0.1:PORT/0
	Port    int
	Dir     string // its working directory: appendonly AOF, RDB snapshot, config, pidfile
	LogFile string // DIR/redis.log
	Reused  bool   // it was already running: Stop leaves it alone

	srv *server
	log io.Writer
}

// StartRedis starts (or reuses) the Redis server whose files live in dir,
// with the append-only file on so data survives restarts. ctx bounds the
// start only; the server outlives it.
func StartRedis(ctx context.Context, dir string, log io.Writer) (*Redis, error) {
	log = orDiscard(log)
	dir, unlock, err := claimDir(ctx, dir, 0o700, log)
	if err != nil {
		return nil, err
	}
	defer unlock()

	r := &Redis{Dir: dir, LogFile: filepath.Join(dir, "redis.log"), log: log}
	if port, ok, err := runningRedis(ctx, dir); err != nil {
		return nil, err
	} else if ok {
		r.setPort(port)
		r.Reused = true
		fmt.Fprintf(log, "deps: redis: reusing the server already running from %s on port %d\n", dir, port)
		return r, nil
	}
	bin, err := findRedis()
	if err != nil {
		return nil, err
	}
	for range 3 {
		port, err := choosePort(dir, "redis", log)
		if err != nil {
			return nil, err
		}
		r.setPort(port)
		err = r.start(ctx, bin)
		if errors.Is(err, errPortTaken) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, fmt.Errorf("deps: redis: the chosen ports kept being taken by other programs; see %s", r.LogFile)
}

func (r *Redis) setPort(port int) {
	r.Port = port
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
}

func (r *Redis) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// start writes the config (the port may have changed) and waits for PONG.
// Redis answers -LOADING while it replays the AOF, which the wait covers.
func (r *Redis) start(ctx context.Context, bin string) error {
	conf := filepath.Join(r.Dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(redisConfig(r.Dir, r.Port)), 0o600); err != nil {
		return fmt.Errorf("deps: write %s: %w", conf, err)
	}
	offset := fileSize(r.LogFile)
	fmt.Fprintf(r.log, "deps: redis: starting on 127.0.0.1:%d, data in %s, log in %s\n", r.Port, r.Dir, r.LogFile)
	srv, err := startServer("redis", bin, []string{conf}, nil, r.LogFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if reply, err := redisDo(ctx, r.addr(), "PING"); err == nil && reply == "PONG" {
			r.srv = srv
			return nil
		}
		select {
		case <-srv.done:
			if strings.Contains(logSince(r.LogFile, offset, 50), "Address already in use") {
				return errPortTaken
			}
			return failure("redis", fmt.Sprintf("exited while starting (%v)", srv.err), r.LogFile, offset)
		case <-ctx.Done():
			_ = srv.stop(context.WithoutCancel(ctx), syscall.SIGKILL)
			return failure("redis", fmt.Sprintf("did not answer on port %d within %s (%v)", r.Port, readyTimeout, ctx.Err()), r.LogFile, offset)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisConfig is private: loopback only, protected mode, no Unix socket, run
// in the foreground (we are its parent), AOF on for durability.
func redisConfig(dir string, port int) string {
	return fmt.Sprintf(`# Written by skyflow local/deps at each start; edits are overwritten.
bind 127.0.0.1
port %d
protected-mode yes
daemonize no
dir %s
pidfile %s
logfile %s
appendonly yes
appendfsync everysec
`, port, strconv.Quote(dir), strconv.Quote(filepath.Join(dir, "redis.pid")), strconv.Quote(filepath.Join(dir, "redis.log")))
}

// Stop shuts down a server this process started with SIGTERM, on which Redis
// flushes the AOF and saves before exiting. A reused server is left running.
func (r *Redis) Stop(ctx context.Context) error {
	if r == nil {
		return nil
	}
	return r.srv.shutdown(ctx, syscall.SIGTERM, r.log, r.Port)
}

// Done is closed when a server this process started exits; it is nil (never
// ready) for a reused one.
func (r *Redis) Done() <-chan struct{} {
	return r.srv.doneChan()
}

// runningRedis reports the port of a server already running from dir: the
// pidfile's process is alive and the server on the remembered port says it
// is that process.
func runningRedis(ctx context.Context, dir string) (int, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "redis.pid"))
	if err != nil {
		return 0, false, nil
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !pidIs(pid, "redis") {
		return 0, false, nil // stale: Redis overwrites it at start
	}
	port, err := readPort(filepath.Join(dir, "port"))
	if err != nil {
		return 0, false, fmt.Errorf("deps: a redis (pid %d) is running from %s but its port is unknown (%w); stop it (kill %d) and try again", pid, dir, err, pid)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if info, err := redisDo(ctx, addr, "INFO", "server"); err == nil {
			if !strings.Contains(info, "\nprocess_id:"+strconv.Itoa(pid)+"\r") {
				return 0, false, fmt.Errorf("deps: redis pid %d runs from %s but port %d is served by another redis; stop pid %d (kill %d)", pid, dir, port, pid, pid)
			}
			return port, true, nil
		}
		if !pidAlive(pid) {
			return 0, false, nil
		}
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("deps: a redis (pid %d) is running from %s but does not answer on port %d; stop it (kill %d) and try again", pid, dir, port, pid)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// redisDo sends one command and returns a simple or bulk string reply; a
// few lines of RESP keep a client library out of this package.
func redisDo(ctx context.Context, addr string, args ...string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return "", err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("redis: empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", errors.New("redis: " + line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis: unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}
