package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Open returns a connection pool for the PostgreSQL server named by url, a
// postgres:// URL or a keyword/value string. It does not connect: the first
// query does, so a cold start does not wait for the database. Use [Ping] to
// check readiness.
//
// A malformed url gives an error that never contains the password.
func Open(ctx context.Context, url string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := ParseConfig(url, opts...)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open pool: %w", err)
	}
	return pool, nil
}

// ParseConfig returns the pool configuration [Open] uses for url and opts.
func ParseConfig(url string, opts ...Option) (*pgxpool.Config, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxConns < 1 {
		return nil, errors.New("db: max conns must be at least 1")
	}
	if o.minConns < 0 || o.minConns > o.maxConns {
		return nil, errors.New("db: min conns must be between 0 and max conns")
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, parseError(url, err)
	}
	// pgxpool fills its own defaults for absent pool_* parameters; ours
	// replace them, and the URL's explicit ones stay.
	if !hasParam(url, "pool_max_conns") {
		cfg.MaxConns = o.maxConns
	}
	if !hasParam(url, "pool_min_conns") {
		cfg.MinConns = min(o.minConns, cfg.MaxConns)
	}
	if !hasParam(url, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = o.maxConnIdleTime
	}
	if !hasParam(url, "pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = o.maxConnLifetime
		cfg.MaxConnLifetimeJitter = o.maxConnLifetime / 10
	}
	if !hasParam(url, "pool_health_check_period") {
		cfg.HealthCheckPeriod = o.healthCheckPeriod
	}
	// Without a timeout a dial to an unreachable server waits for the
	// caller's context only; a readiness probe deserves a quicker answer.
	if cfg.ConnConfig.ConnectTimeout == 0 && !hasParam(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	// Name the process in pg_stat_activity unless the URL names it.
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" && len(os.Args) > 0 {
		cfg.ConnConfig.RuntimeParams["application_name"] = filepath.Base(os.Args[0])
	}
	if err := cancelRequests(cfg.ConnConfig); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Ping checks that the pool can reach the server: it acquires a connection
// (dialing if none is open) and runs an empty query. Readiness probes use it.
func Ping(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("db: ping: %w", err)
	}
	return nil
}
