package delivery

import (
	"github.com/prometheus/client_golang/prometheus"

	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// metrics of a Dispatcher, shared by every dispatcher of a process. Labels
// are outcomes and classes, never an endpoint, a URL or an event id.
type metrics struct {
	created    prometheus.Counter
	deliveries *prometheus.CounterVec // succeeded, dead
	retries    prometheus.Counter
	attempts   *prometheus.CounterVec   // result class
	latency    *prometheus.HistogramVec // result class
	disabled   *prometheus.CounterVec   // reason
	pending    prometheus.Gauge
}

func newMetrics() (*metrics, error) {
	var err error
	r := skymetrics.Registry
	m := &metrics{
		created: skymetrics.Register(r, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_webhook_deliveries_created_total",
			Help: "Webhook deliveries recorded (one per event and subscribed endpoint).",
		}), &err),
		deliveries: skymetrics.Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_webhook_deliveries_total",
			Help: "Webhook deliveries finished, by outcome: succeeded, or dead after the last attempt.",
		}, []string{"outcome"}), &err),
		retries: skymetrics.Register(r, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_webhook_retries_scheduled_total",
			Help: "Failed webhook attempts with another attempt scheduled.",
		}), &err),
		attempts: skymetrics.Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_webhook_attempts_total",
			Help: "Webhook delivery attempts, by result: 2xx, 3xx, 4xx, 5xx, timeout, refused (address policy), network.",
		}, []string{"result"}), &err),
		latency: skymetrics.Register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "skyflow_webhook_attempt_duration_seconds",
			Help:    "Duration of webhook delivery attempts, request to response read, by result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}), &err),
		disabled: skymetrics.Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_webhook_endpoints_disabled_total",
			Help: "Webhook endpoints disabled automatically, by reason: failing, dead_deliveries, gone.",
		}, []string{"reason"}), &err),
		pending: skymetrics.Register(r, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skyflow_webhook_pending_deliveries",
			Help: "Webhook deliveries waiting for an attempt, as of the last sweep.",
		}), &err),
	}
	return m, err
}

func (m *metrics) observe(r result) {
	m.attempts.WithLabelValues(r.class).Inc()
	m.latency.WithLabelValues(r.class).Observe(r.latency.Seconds())
}
