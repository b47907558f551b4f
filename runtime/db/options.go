package db

import "time"

// Defaults for a function process. Its pool bounds how many of its
// transactions run at once (4 made 8 concurrent clients of one function
// wait in turn), and PostgreSQL's group commit pays off only with commits
// that arrive together. The functions reach PostgreSQL through PgBouncer,
// which holds the server connections, so client connections are cheap;
// they are opened only as concurrency needs them and closed when idle.
const (
	DefaultMaxConns          = 16
	DefaultMinConns          = 0
	DefaultMaxConnIdleTime   = 2 * time.Minute
	DefaultMaxConnLifetime   = 30 * time.Minute
	DefaultHealthCheckPeriod = 30 * time.Second
	DefaultConnectTimeout    = 5 * time.Second
)

// An Option changes a pool setting of [Open]. A pool_* parameter present in
// the URL (pool_max_conns, pool_min_conns, pool_max_conn_idle_time,
// pool_max_conn_lifetime, pool_health_check_period) wins over the option:
// options are the program's defaults, the URL is the deployment's choice.
type Option func(*options)

type options struct {
	maxConns          int32
	minConns          int32
	maxConnIdleTime   time.Duration
	maxConnLifetime   time.Duration
	healthCheckPeriod time.Duration
}

func defaultOptions() options {
	return options{
		maxConns:          DefaultMaxConns,
		minConns:          DefaultMinConns,
		maxConnIdleTime:   DefaultMaxConnIdleTime,
		maxConnLifetime:   DefaultMaxConnLifetime,
		healthCheckPeriod: DefaultHealthCheckPeriod,
	}
}

// WithMaxConns sets the largest number of open connections (default 16).
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithMinConns sets the number of connections kept open (default 0). A value
// above zero makes the pool dial in the background as soon as it is opened.
func WithMinConns(n int32) Option { return func(o *options) { o.minConns = n } }

// WithMaxConnIdleTime sets how long an idle connection is kept (default 2m).
func WithMaxConnIdleTime(d time.Duration) Option {
	return func(o *options) { o.maxConnIdleTime = d }
}

// WithMaxConnLifetime sets how long a connection is used before it is
// replaced (default 30m), so that replicas rebalance after a failover.
func WithMaxConnLifetime(d time.Duration) Option {
	return func(o *options) { o.maxConnLifetime = d }
}

// WithHealthCheckPeriod sets how often idle connections are checked and
// expired ones closed (default 30s).
func WithHealthCheckPeriod(d time.Duration) Option {
	return func(o *options) { o.healthCheckPeriod = d }
}
