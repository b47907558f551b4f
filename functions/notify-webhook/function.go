// Package main is the notify-webhook function: it delivers Skyflow's
// events (com.skyflow.*, from the broker) to the webhook endpoints that
// subscribed to them, signed per Standard Webhooks, and retries what
// failed when its PingSource (eventing/sources/notify-webhook.yaml) pings
// it every minute (domain/webhooks/delivery does the work and reads the
// settings).
//
// For each event it records one delivery per matching active endpoint
// (once, however often the event is redelivered) and makes the first
// attempts at once. A failing endpoint is never this function's failure:
// its delivery waits for the next attempt on the schedule, in the table.
// Only its own failures (the database) are errors, for the broker to
// retry. After the last attempt a delivery is dead and a
// com.skyflow.webhook.delivery.failed event is its dead-letter record; an
// endpoint that keeps failing is disabled (com.skyflow.webhook.disabled).
package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/delivery"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Event types and sources.
const (
	PingType = "dev.knative.sources.ping"
	Source   = "/skyflow/functions/notify-webhook"
	// gatewaySource is the source of client requests: they carry request
	// bodies (values) and must never leave through a webhook.
	gatewaySource = "/skyflow/functions/gateway"
)

type Function struct {
	db.Lifecycle[delivery.Dispatcher, *delivery.Dispatcher]
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Start connects and reads the delivery settings (delivery.Dispatcher.Open).
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	if err := f.Lifecycle.Start(ctx, cfg); err != nil {
		return err
	}
	f.Backend.Source = Source
	return nil
}

// Handle delivers a Skyflow event (from the broker), or on a ping makes
// the attempts that are due.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() == PingType {
		if err := sender.Require(ctx, sender.Ping); err != nil {
			return nil, err
		}
		swept, err := f.Backend.Sweep(ctx, time.Now().Add(f.Backend.SweepBudget))
		if swept.Attempted > 0 || swept.Deleted > 0 {
			slog.InfoContext(ctx, "webhook sweep", "attempted", swept.Attempted, "deleted", swept.Deleted)
		}
		return nil, err
	}
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	switch {
	case e.Source() == gatewaySource:
		return nil, apierr.InvalidArgument("client requests are never delivered to webhooks, only Skyflow's events")
	case !strings.HasPrefix(e.Type(), webhooks.TypePrefix):
		return nil, apierr.InvalidArgument("notify-webhook delivers %s* events and takes %s pings; %q is neither", webhooks.TypePrefix, PingType, e.Type())
	}
	d, err := f.Backend.Dispatch(ctx, e)
	if d.Created > 0 {
		slog.DebugContext(ctx, "webhook deliveries", "type", e.Type(), "id", e.ID(), "endpoints", d.Endpoints, "created", d.Created, "attempted", d.Attempted)
	}
	return nil, err
}
