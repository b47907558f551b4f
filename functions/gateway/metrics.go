package main

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gatewayMetrics are the gateway's own metrics; the rate limiter and the
// response cache add theirs (decisions, hits and misses). Labels are route
// patterns and function names, never values from a request.
type gatewayMetrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	rateLimited    *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
}

var (
	metricsOnce sync.Once
	theMetrics  *gatewayMetrics
)

func newGatewayMetrics(reg prometheus.Registerer) *gatewayMetrics {
	metricsOnce.Do(func() {
		m := &gatewayMetrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyflow_gateway_requests_total",
				Help: "Requests answered by the gateway, by route and status.",
			}, []string{"route", "code"}),
			duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "skyflow_gateway_request_duration_seconds",
				Help:    "Time from receiving a request to answering it, by route.",
				Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"route"}),
			rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyflow_gateway_rate_limited_total",
				Help: "Requests refused with 429, by rate-limit class.",
			}, []string{"class"}),
			upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyflow_gateway_upstream_errors_total",
				Help: "Requests whose function did not answer properly, by function and reason.",
			}, []string{"function", "reason"}),
		}
		reg.MustRegister(m.requests, m.duration, m.rateLimited, m.upstreamErrors)
		theMetrics = m
	})
	return theMetrics
}

func (m *gatewayMetrics) observe(route string, status int, start time.Time) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}
