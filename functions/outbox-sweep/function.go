// Package main is the outbox-sweep function: it resends the outbox events
// that a function committed but could not hand to the broker (the broker
// was down, the process died between commit and send). A PingSource
// triggers it every minute in the cluster; the local platform does the same
// from the same manifest.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// PingType is the type of the PingSource's events.
const PingType = "dev.knative.sources.ping"

// Function sweeps the outbox.
type Function struct {
	outbox.Lifecycle
	// olderThan leaves the newest events to the relays of the processes
	// that committed them.
	olderThan time.Duration
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Start connects (lazily) to the database and the broker.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	f.olderThan = env.Duration("OUTBOX_SWEEP_OLDER_THAN", 30*time.Second)
	pool, publisher, err := outbox.Connect(ctx, env)
	if err != nil {
		return err
	}
	f.Backend = &outbox.Backend{Pool: pool, Publisher: publisher}
	return nil
}

// Handle sweeps once per ping.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Ping); err != nil {
		return nil, err
	}
	if e.Type() != PingType {
		return nil, apierr.InvalidArgument("outbox-sweep handles %s events only.", PingType)
	}
	sent, err := f.Backend.Publisher.Sweep(ctx, f.olderThan)
	if err != nil {
		return nil, err
	}
	if sent > 0 {
		slog.InfoContext(ctx, "resent outbox events", "count", sent)
	}
	return nil, nil
}
