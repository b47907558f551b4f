// Package main is the audit-record function: it keeps every Skyflow event
// (com.skyflow.*) in the tamper-evident audit log (shared/audit), once,
// however often it is redelivered. Entries hold context attributes and
// allow-listed fields only, never a sensitive value.
//
// It runs as a single instance with one event at a time, and its Trigger
// delivers in order: appends are serialised by the chain head's lock
// anyway, and one writer keeps the chain in the order events were
// published.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/shared/audit"
	"github.com/skyflow-oss/skyflow/shared/config"
	"github.com/skyflow-oss/skyflow/shared/db"
	"github.com/skyflow-oss/skyflow/shared/metrics"
	"github.com/skyflow-oss/skyflow/shared/sender"
)

// Function records audit entries.
type Function struct {
	db.Lifecycle // Pool; Ready and Stop
	recorded     *prometheus.CounterVec
	types        *metrics.BoundedLabel
}

// New is called once per process.
func New() *Function {
	f := &Function{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_audit_entries_total",
			Help: "Entries appended to the audit log, by event type.",
		}, []string{"type"}),
		types: metrics.NewBoundedLabel(128),
	}
	metrics.Registry.MustRegister(f.recorded)
	return f
}

// Start connects (lazily) to the database.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	var err error
	f.Pool, err = db.OpenFromEnv(ctx, config.FromMap(cfg))
	return err
}

// Handle appends the event's entry in one transaction; a redelivery adds
// nothing.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	entry := audit.FromEvent(e, time.Now())
	var (
		seq      int64
		appended bool
	)
	err := pgx.BeginFunc(ctx, f.Pool, func(tx pgx.Tx) error {
		var err error
		seq, appended, err = audit.Append(ctx, tx, entry)
		return err
	})
	if err != nil {
		return nil, err
	}
	if appended {
		f.recorded.WithLabelValues(f.types.Value(entry.Type)).Inc()
		slog.DebugContext(ctx, "audit entry", "seq", seq, "id", entry.ID, "type", entry.Type)
	}
	return nil, nil
}
