package host

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/runtime/metrics"
)

// hostMetrics are the RED metrics of a function, by function and event type.
type hostMetrics struct {
	received  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	panics    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	eventType *metrics.BoundedLabel
	function  string
}

var (
	hostMetricsOnce sync.Once
	sharedMetrics   *hostMetrics
)

// newHostMetrics registers the metrics once per process: a process runs one
// function, and tests may build several hosts in one process.
func newHostMetrics(function string) *hostMetrics {
	hostMetricsOnce.Do(func() {
		m := &hostMetrics{
			received: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyflow_function_events_received_total",
				Help: "CloudEvents handed to the function.",
			}, []string{"function", "type"}),
			errors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyflow_function_event_errors_total",
				Help: "Events answered with an error, by HTTP status (invalid: not a CloudEvent).",
			}, []string{"function", "type", "code"}),
			panics: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyflow_function_panics_total",
				Help: "Handler panics recovered by the host.",
			}, []string{"function"}),
			duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "skyflow_function_event_duration_seconds",
				Help:    "Time from receiving an event to answering it.",
				Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"function", "type", "code"}),
			inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
				Name:        "skyflow_function_events_in_flight",
				Help:        "Events being handled now.",
				ConstLabels: prometheus.Labels{"function": function},
			}),
			// Event types come from callers; bound the label's cardinality.
			eventType: metrics.NewBoundedLabel(64),
			function:  function,
		}
		metrics.Registry.MustRegister(m.received, m.errors, m.panics, m.duration, m.inFlight)
		// A series that appears on its first increment is invisible to
		// increase(): start at 0 so the first panic can alert.
		m.panics.WithLabelValues(function)
		sharedMetrics = m
	})
	return sharedMetrics
}

func (m *hostMetrics) observe(typ string, code int, start time.Time) {
	m.duration.WithLabelValues(m.function, typ, fmt.Sprint(code)).Observe(time.Since(start).Seconds())
}

func metricsHandler() http.Handler { return metrics.Handler() }
