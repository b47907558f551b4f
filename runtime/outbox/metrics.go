package outbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// metrics are the publisher's Prometheus collectors; a nil *metrics records
// nothing.
type metrics struct {
	published *prometheus.CounterVec
	failures  *prometheus.CounterVec
	resends   prometheus.Counter
	pending   prometheus.Gauge
	latency   prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	if r == nil {
		return nil, nil
	}
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_outbox_events_published_total",
			Help: "Events the sink accepted, by event type.",
		}, []string{"type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_outbox_publish_failures_total",
			Help: "Sends to the sink that failed and were left for a retry, by event type.",
		}, []string{"type"}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_outbox_sweep_resends_total",
			Help: "Events the sweep sent that no relay had.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skyflow_outbox_pending_events",
			Help: "Unsent events in the outbox, as of the last sweep.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skyflow_outbox_publish_delay_seconds",
			Help:    "From an event's outbox row being written to the sink taking it.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 5, 30, 120},
		}),
	}
	var err error
	m.published = skymetrics.Register(r, m.published, &err)
	m.failures = skymetrics.Register(r, m.failures, &err)
	m.resends = skymetrics.Register(r, m.resends, &err)
	m.pending = skymetrics.Register(r, m.pending, &err)
	m.latency = skymetrics.Register(r, m.latency, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) sent(typ string, byResend bool, delay time.Duration) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(typ).Inc()
	m.latency.Observe(delay.Seconds())
	if byResend {
		m.resends.Inc()
	}
}

func (m *metrics) failed(typ string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(typ).Inc()
}

func (m *metrics) setPending(n int) {
	if m == nil {
		return
	}
	m.pending.Set(float64(n))
}
