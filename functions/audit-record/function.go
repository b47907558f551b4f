// Package main is the audit-record function: it keeps every Skyflow event
// (com.skyflow.*) in the tamper-evident audit log (domain/audit), once,
// however often it is redelivered. Entries hold context attributes and
// allow-listed fields only, never a sensitive value.
//
// One instance takes many deliveries at once and groups them: each Handle
// hands its entry to an [audit.Writer] and returns only when the
// transaction holding it has committed, so an acknowledged event is always
// in the log. One transaction a group pays the chain head's lock and the
// durable commit once for every entry in it, which is what lets one
// writer keep up with the vault's reads. The chain is the order of
// appends, not of publication: the broker delivers unordered, and each
// entry keeps its event's own time.
package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// maxBatch bounds the entries of one transaction: far above the deliveries
// in flight (containerConcurrency), so under load every waiting entry
// joins the next transaction.
const maxBatch = 500

// Function records audit entries.
type Function struct {
	db.Lifecycle[db.Database, *db.Database]
	writer *audit.Writer
	m      *fnMetrics
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

type fnMetrics struct {
	recorded  *prometheus.CounterVec
	types     *metrics.BoundedLabel
	batches   *prometheus.CounterVec
	batchSize prometheus.Histogram
}

func New() *Function {
	m := &fnMetrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_audit_entries_total",
			Help: "Entries appended to the audit log, by event type.",
		}, []string{"type"}),
		types: metrics.NewBoundedLabel(128),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_audit_batches_total",
			Help: "Transactions that appended a group of entries to the audit log, by result (committed, failed).",
		}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skyflow_audit_batch_size",
			Help:    "Entries handed to one audit log transaction, duplicates included.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
		}),
	}
	metrics.Registry.MustRegister(m.recorded, m.batches, m.batchSize)
	return &Function{m: m}
}

// Start connects (lazily) to the database and starts the writer.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	if err := f.Lifecycle.Start(ctx, cfg); err != nil {
		return err
	}
	f.writer = audit.NewWriter(f.Backend.Pool, audit.WriterOptions{MaxBatch: maxBatch, OnBatch: f.observe})
	return nil
}

func (f *Function) observe(size, appended int, took time.Duration, err error) {
	f.m.batchSize.Observe(float64(size))
	if err != nil {
		f.m.batches.WithLabelValues("failed").Inc()
		slog.Warn("audit batch failed; its deliveries will be retried", "entries", size, "took", took, "error", err)
		return
	}
	f.m.batches.WithLabelValues("committed").Inc()
}

// Stop stops the writer (the host has drained the deliveries in flight),
// then closes the pool.
func (f *Function) Stop(ctx context.Context) error {
	if f.writer != nil {
		f.writer.Close(ctx)
	}
	return f.Lifecycle.Stop(ctx)
}

// Handle appends the event's entry and returns once it is committed; a
// redelivery adds nothing.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	entry := audit.FromEvent(e, time.Now())
	if err := entry.Validate(); err != nil {
		// No retry would change it: straight to the dead-letter sink,
		// which keeps the event.
		return nil, apierr.InvalidArgument("the event cannot be audited: %v", err)
	}
	r, err := f.writer.Append(ctx, entry)
	if err != nil {
		if errors.Is(err, audit.ErrClosed) {
			return nil, apierr.Unavailable("audit-record is stopping")
		}
		return nil, err
	}
	if r.Appended {
		f.m.recorded.WithLabelValues(f.m.types.Value(entry.Type)).Inc()
		slog.DebugContext(ctx, "audit entry", "seq", r.Seq, "id", entry.ID, "type", entry.Type)
	}
	return nil, nil
}
