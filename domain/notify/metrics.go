package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/runtime/metrics"
)

// Metrics count a channel's notices by kind and notice name (both from a
// fixed set: never a recipient or a value).
type Metrics struct {
	channel               string
	sent, failed, skipped *prometheus.CounterVec
}

// NewMetrics registers a channel's counters in the process registry
// (sharing them when they exist already, as in tests that start a
// function twice):
//
//	skyflow_notifications_sent_total{channel,kind,notice}
//	skyflow_notifications_failed_total{channel,kind,notice,reason}
//	  reason: temporary (retried), rejected (refused for good, dropped), error
//	skyflow_notifications_skipped_total{channel,kind,notice,reason}
//	  reason: duplicate, opted_out, unverified, already_verified, no_user, busy
func NewMetrics(channel string) (*Metrics, error) {
	var err error
	m := &Metrics{channel: channel}
	m.sent = metrics.Register(metrics.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyflow_notifications_sent_total",
		Help: "Notices sent, by channel, kind and notice.",
	}, []string{"channel", "kind", "notice"}), &err)
	m.failed = metrics.Register(metrics.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyflow_notifications_failed_total",
		Help: "Notices that could not be sent, by channel, kind, notice and reason (temporary: retried; rejected: dropped).",
	}, []string{"channel", "kind", "notice", "reason"}), &err)
	m.skipped = metrics.Register(metrics.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyflow_notifications_skipped_total",
		Help: "Recipients a notice was not sent to, by channel, kind, notice and reason.",
	}, []string{"channel", "kind", "notice", "reason"}), &err)
	return m, err
}

// Sent counts a notice sent to one recipient.
func (m *Metrics) Sent(n *Notice) { m.sent.WithLabelValues(m.channel, n.Kind, n.Name).Inc() }

// Failed counts a failed send.
func (m *Metrics) Failed(n *Notice, reason string) {
	m.failed.WithLabelValues(m.channel, n.Kind, n.Name, reason).Inc()
}

// Skipped counts a recipient left out.
func (m *Metrics) Skipped(n *Notice, reason string) {
	m.skipped.WithLabelValues(m.channel, n.Kind, n.Name, reason).Inc()
}

// SentCounter and FailedCounter are the counters of a notice, for tests.
func (m *Metrics) SentCounter(n *Notice) prometheus.Counter {
	return m.sent.WithLabelValues(m.channel, n.Kind, n.Name)
}

// FailedCounter is the failure counter of a notice and reason.
func (m *Metrics) FailedCounter(n *Notice, reason string) prometheus.Counter {
	return m.failed.WithLabelValues(m.channel, n.Kind, n.Name, reason)
}
