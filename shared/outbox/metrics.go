package outbox

import (
	"github.com/prometheus/client_golang/prometheus"

	skymetrics "github.com/skyflow-oss/skyflow/shared/metrics"
)

// metrics are the publisher's Prometheus collectors; a nil *metrics records
// nothing.
type metrics struct {
	published *prometheus.CounterVec
	failures  *prometheus.CounterVec
	resends   prometheus.Counter
	pending   prometheus.Gauge
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
			Help: "Events the sweep sent that the post-commit send had not.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skyflow_outbox_pending_events",
			Help: "Unsent events in the outbox, as of the last sweep.",
		}),
	}
	var err error
	m.published = skymetrics.Register(r, m.published, &err)
	m.failures = skymetrics.Register(r, m.failures, &err)
	m.resends = skymetrics.Register(r, m.resends, &err)
	m.pending = skymetrics.Register(r, m.pending, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) sent(typ string, byResend bool) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(typ).Inc()
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
