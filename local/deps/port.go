package deps

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errPortTaken reports that a server could not bind its port: someone took
// it between our check and the server's bind, so the caller picks another.
var errPortTaken = errors.New("port taken")

// wellKnown are the system servers' ports, never used so that a private
// server is never mistaken for the system's (or blocks it from starting).
var wellKnown = map[int]bool{5432: true, 6379: true}

// choosePort returns the port remembered in dir/port when it is still free,
// or else a new free loopback port, which it remembers. A fixed port lets a
// developer's tools (psql, redis-cli, a .env) keep working across restarts.
func choosePort(dir, name string, w io.Writer) (int, error) {
	file := filepath.Join(dir, "port")
	old, _ := readPort(file)
	if old > 0 && portFree(old) {
		return old, nil
	}
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	if old > 0 {
		fmt.Fprintf(w, "deps: %s: port %d (remembered in %s) is in use by another program; using port %d instead\n", name, old, file, port)
	} else {
		fmt.Fprintf(w, "deps: %s: chose port %d (remembered in %s)\n", name, port, file)
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("deps: remember port: %w", err)
	}
	return port, nil
}

func readPort(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("deps: %s holds no port number", file)
	}
	return p, nil
}

// portFree reports whether nothing listens on 127.0.0.1:port (a listener on
// 0.0.0.0 also makes the bind fail, as it would for the server).
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("deps: find a free port on 127.0.0.1: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !wellKnown[port] {
			return port, nil
		}
	}
	return 0, errors.New("deps: no free port on 127.0.0.1")
}
