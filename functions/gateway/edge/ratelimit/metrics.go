package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// metrics are the Limiter's counters; a nil *metrics records nothing. The
// labels are the class and the result, never the subject.
type metrics struct {
	decisions *prometheus.CounterVec
	degraded  prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	if r == nil {
		return nil, nil
	}
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_gateway_ratelimit_decisions_total",
			Help: "Rate limit decisions, by route class and result (allowed or limited).",
		}, []string{"class", "result"}),
		degraded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_gateway_ratelimit_degraded_total",
			Help: "Rate limit decisions taken in process because Redis could not be reached.",
		}),
	}
	var err error
	m.decisions = skymetrics.Register(r, m.decisions, &err)
	m.degraded = skymetrics.Register(r, m.degraded, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) record(class string, d Decision) {
	if m == nil {
		return
	}
	result := "allowed"
	if !d.Allowed {
		result = "limited"
	}
	m.decisions.WithLabelValues(class, result).Inc()
	if d.Degraded {
		m.degraded.Inc()
	}
}
