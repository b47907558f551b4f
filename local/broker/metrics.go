package broker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Delivery results, the values of the "result" label.
const (
	resultOK           = "ok"            // the subscriber answered 2xx
	resultRetried      = "retried"       // one failed attempt that will be retried
	resultDeadLettered = "dead_lettered" // given up, stored by the dead-letter sink
	resultDropped      = "dropped"       // given up with no (working) dead-letter sink, or unreadable record
	resultFiltered     = "filtered"      // not for this Trigger
)

// metrics are labelled by namespace and Broker or Trigger name only, never
// by anything taken from an event.
type metrics struct {
	ingested   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	lag        *prometheus.GaugeVec

	// The ingress's group commit (groupcommit.go).
	syncRounds   prometheus.Counter
	syncedEvents prometheus.Counter
	syncSeconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry() // counted but not exposed
	}
	m := &metrics{
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_broker_events_ingested_total",
			Help: "Events accepted by the broker ingress and stored in Kafka.",
		}, []string{"namespace", "broker"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_broker_events_rejected_total",
			Help: "Ingress requests refused, by HTTP status code.",
		}, []string{"namespace", "broker", "code"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_broker_deliveries_total",
			Help: "Trigger deliveries by result: ok, retried, dead_lettered, dropped, filtered.",
		}, []string{"namespace", "trigger", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "skyflow_broker_delivery_latency_seconds",
			Help:    "Time from ingress to the subscriber's 2xx answer, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms … ~4.4min
		}, []string{"namespace", "trigger"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skyflow_broker_consumer_lag",
			Help: "Records in the Broker's topic not yet committed by the Trigger's consumer group.",
		}, []string{"namespace", "trigger"}),
		syncRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_broker_sync_rounds_total",
			Help: "Rounds of the group commit: each makes the events that waited for it durable with one sync of the partitions they touched.",
		}),
		syncedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyflow_broker_synced_events_total",
			Help: "Events made durable by the group commit's rounds (divide by the rounds for events per sync).",
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skyflow_broker_sync_seconds",
			Help:    "Duration of a group commit round's sync.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1ms … ~3.3s
		}),
	}
	var err error
	if m.ingested, err = register(reg, m.ingested); err != nil {
		return nil, err
	}
	if m.rejected, err = register(reg, m.rejected); err != nil {
		return nil, err
	}
	if m.deliveries, err = register(reg, m.deliveries); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.lag, err = register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.syncRounds, err = register(reg, m.syncRounds); err != nil {
		return nil, err
	}
	if m.syncedEvents, err = register(reg, m.syncedEvents); err != nil {
		return nil, err
	}
	if m.syncSeconds, err = register(reg, m.syncSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// register reuses a collector registered by an earlier Broker on the same
// registry, so a Broker can be restarted in one process.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
