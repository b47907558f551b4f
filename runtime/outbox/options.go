package outbox

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of a [Publisher].
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultBatchSize      = 100
	DefaultBackoffBase    = 10 * time.Second
	DefaultBackoffMax     = 10 * time.Minute
	DefaultLease          = 2 * time.Minute
)

// An Option configures a [Publisher].
type Option func(*options)

type options struct {
	httpClient     *http.Client
	logger         *slog.Logger
	registerer     prometheus.Registerer
	requestTimeout time.Duration
	retention      time.Duration
	batchSize      int
	backoffBase    time.Duration
	backoffMax     time.Duration
	lease          time.Duration
	concurrency    int
	relay          bool // tests of the sweep turn the relay off
}

func defaultOptions() options {
	return options{
		httpClient:     &http.Client{Transport: keepAlive()},
		logger:         slog.Default(),
		requestTimeout: DefaultRequestTimeout,
		retention:      DefaultRetention,
		batchSize:      DefaultBatchSize,
		backoffBase:    DefaultBackoffBase,
		backoffMax:     DefaultBackoffMax,
		lease:          DefaultLease,
		concurrency:    DefaultConcurrency,
		relay:          true,
	}
}

// keepAlive is the default transport, keeping a connection per concurrent
// send (net/http keeps two per host otherwise, and would reconnect).
func keepAlive() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2 * DefaultConcurrency
	return t
}

// DefaultConcurrency is how many subjects' events are sent at once.
const DefaultConcurrency = 8

// WithConcurrency sets how many POSTs may be in flight at once, each for
// events of a different subject (default DefaultConcurrency; 1 sends one
// at a time).
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithHTTPClient sets the client that POSTs events to the sink. Its Timeout,
// if any, applies on top of the per-request timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithLogger sets the logger for send failures (default slog.Default()).
// Entries carry event source, id and type, never data.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the publisher's metrics with r. Publishers that
// share a registerer share the metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithRequestTimeout bounds each POST to the sink (default 10s).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.requestTimeout = d } }

// WithRetention sets how long sent rows are kept before Sweep deletes them
// (default 7 days).
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithBatchSize sets how many rows Sweep takes at a time (default 100).
func WithBatchSize(n int) Option { return func(o *options) { o.batchSize = n } }

// WithBackoff sets how long a row waits after its first failed resend by
// the sweep, and the most that wait grows to, doubling per failure (default
// 10s up to 10m). A failed first send is retried by the next sweep.
func WithBackoff(base, ceiling time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoffMax = base, ceiling }
}

// WithLease sets how long rows taken by Sweep or Publish stay reserved for
// it, so that no other sweeper sends them meanwhile (default 2m). A batch
// stops sending at half the lease; what it did not reach is released.
func WithLease(d time.Duration) Option { return func(o *options) { o.lease = d } }
