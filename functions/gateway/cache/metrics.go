package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// maxRoutes bounds the route label: routes are names from the gateway's
// table, a few dozen at most, but a key is a string any caller can make.
const maxRoutes = 100

// metrics are the cache's counters; a nil *metrics records nothing. Labels
// carry route names only, never a principal, parameter or tag.
type metrics struct {
	routes        *skymetrics.BoundedLabel
	requests      *prometheus.CounterVec
	stores        *prometheus.CounterVec
	invalidations *prometheus.CounterVec
	deleted       prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	if r == nil {
		return nil, nil
	}
	m := &metrics{
		routes: skymetrics.NewBoundedLabel(maxRoutes),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_gateway_cache_requests_total",
			Help: "Response cache lookups, by route and result (hit, miss, error; an error is served as a miss).",
		}, []string{"route", "result"}),
		stores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_gateway_cache_stores_total",
			Help: "Responses put in the cache, by route and result (ok, error).",
		}, []string{"route", "result"}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_gateway_cache_invalidations_total",
			Help: "Invalidate calls, by result (ok, error).",
		}, []string{"result"}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_gateway_cache_invalidated_entries_total",
			Help: "Cached responses deleted by invalidation (not counting those already expired).",
		}),
	}
	var err error
	m.requests = skymetrics.Register(r, m.requests, &err)
	m.stores = skymetrics.Register(r, m.stores, &err)
	m.invalidations = skymetrics.Register(r, m.invalidations, &err)
	m.deleted = skymetrics.Register(r, m.deleted, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) route(r string) string {
	if r == "" {
		return "unknown"
	}
	return m.routes.Value(r)
}

func (m *metrics) request(route, result string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(m.route(route), result).Inc()
}

func (m *metrics) store(route string, err error) {
	if m == nil {
		return
	}
	m.stores.WithLabelValues(m.route(route), result(err)).Inc()
}

func (m *metrics) invalidated(n int64, err error) {
	if m == nil {
		return
	}
	m.invalidations.WithLabelValues(result(err)).Inc()
	if err == nil && n > 0 {
		m.deleted.Add(float64(n))
	}
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
