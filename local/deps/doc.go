// Package deps starts private PostgreSQL and Redis servers for the local
// platform (`make run`, `skyflow dev`) and for tests (`make test`), using the
// binaries from the OS packages, so no container engine is needed, and a
// private PgBouncer in transaction pooling mode in front of that PostgreSQL,
// through which the functions connect, as they do in a cluster.
//
// Each server keeps everything under a directory the caller names (for
// example .dev/postgres and .dev/redis): its data, a log file, the loopback
// port it listens on (chosen once and remembered), and a lock file so that
// two processes starting the same directory at once do not both start it.
// A server already running from that directory is reused; only the process
// that started a server stops it.
//
// The servers listen on 127.0.0.1 only, run in their own process group (so
// Ctrl-C in a terminal reaches the Go program, which then stops them in
// order), and never touch the system's own PostgreSQL or Redis data.
package deps
