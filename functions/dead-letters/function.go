// Package main is the dead-letters function: the dead-letter sink of every
// Trigger. It keeps each event that could not be delivered (once, however
// often it is redelivered), counts it by type, and announces it with a
// com.skyflow.eventing.deadletter.recorded event, written through the
// outbox in the same transaction, so operators can be told
// (domain/deadletters does the keeping and the announcing).
package main

import (
	"context"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/deadletters"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Source is the source of the events this function emits.
const Source = "/skyflow/functions/dead-letters"

// Function records dead letters.
type Function struct {
	outbox.Lifecycle
	received *prometheus.CounterVec
	types    *metrics.BoundedLabel
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function {
	f := &Function{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_dead_letters_total",
			Help: "Events that could not be delivered after their retries, by type.",
		}, []string{"type"}),
		types: metrics.NewBoundedLabel(64),
	}
	metrics.Registry.MustRegister(f.received)
	return f
}

// Handle keeps one dead letter.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	rec, fresh, err := deadletters.Record(ctx, f.Backend.Publisher, Source, e)
	if err != nil {
		return nil, err
	}
	if fresh {
		f.received.WithLabelValues(f.types.Value(rec.Type)).Inc()
		slog.WarnContext(ctx, "dead letter", "id", rec.ID, "type", rec.Type, "status", rec.Status, "destination", rec.Destination)
	}
	return nil, nil
}
