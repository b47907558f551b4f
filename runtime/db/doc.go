// Package db opens PostgreSQL connection pools for Skyflow function processes.
//
// A function is a small, short-lived process that may scale to zero, so the
// pools made here are small and lazy: [Open] parses the URL and returns at
// once, and the first query dials the server. Schema changes are not made
// here; they belong to package [github.com/skyflow-oss/skyflow/runtime/db/migrate].
//
// # Through PgBouncer
//
// Every process has its own pool, and a platform runs many processes (a
// cluster, many pods of each), so the functions reach PostgreSQL through
// PgBouncer in transaction pooling mode: a server connection belongs to a
// client for one transaction only, and hundreds of pools share a few dozen
// server connections. The URL the functions get then carries
// default_query_exec_mode=cache_describe ([ThroughPooler] adds it), which
// pgx reads; see [PoolerExecMode] for why that mode.
//
// Code that uses these pools must therefore keep no state in a session
// beyond a transaction: no session advisory locks (pg_advisory_xact_lock is
// fine), no LISTEN, no SET without LOCAL, no temporary tables, no named
// prepared statements (Conn.Prepare), and no connection held on to across
// transactions. Migrations (they hold a session advisory lock) and tests
// connect to PostgreSQL directly.
package db
