package ratelimit

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	m.decisions = register(r, m.decisions, &err)
	m.degraded = register(r, m.degraded, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered,
// so that several limiters in one process share their counters.
func register[C prometheus.Collector](r prometheus.Registerer, c C, errp *error) C {
	err := r.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
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
