// Package main is the notify-webhook function: it delivers Skyflow's
// events (com.skyflow.*, from the broker) to the webhook endpoints that
// subscribed to them, signed per Standard Webhooks, and retries what
// failed when its PingSource (eventing/sources/notify-webhook.yaml) pings
// it every minute (domain/webhooks/delivery does the work).
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
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/delivery"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
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

// Function is the notify-webhook operation.
type Function struct {
	webhooks.Lifecycle // Start connects the backend; Ready and Stop
	dispatcher         *delivery.Dispatcher
	sweepBudget        time.Duration
}

// New is called once per process.
func New() *Function { return &Function{} }

// Start connects and reads the delivery settings:
//
//	SKYFLOW_WEBHOOK_TIMEOUT            each attempt (10s)
//	SKYFLOW_WEBHOOK_SCHEDULE           waits after each failed attempt (5s,5m,30m,2h,5h,10h,10h; none: no retry)
//	SKYFLOW_WEBHOOK_JITTER_PERCENT     ± spread of each wait (20)
//	SKYFLOW_WEBHOOK_DISABLE_AFTER      disable an endpoint failing every attempt this long (24h; 0s: never)
//	SKYFLOW_WEBHOOK_DISABLE_AFTER_DEAD disable after this many dead deliveries in a row (5; 0: never)
//	SKYFLOW_WEBHOOK_CONCURRENCY        attempts at once (16)
//	SKYFLOW_WEBHOOK_INLINE_BUDGET      attempts made while handling an event (15s)
//	SKYFLOW_WEBHOOK_SWEEP_BUDGET       work per ping (25s)
//	SKYFLOW_WEBHOOK_SWEEP_WAIT         a sweep waits this long for a retry about to fall due (20s)
//	SKYFLOW_WEBHOOK_RETENTION          finished deliveries stay in the log (720h)
//	SKYFLOW_WEBHOOK_ALLOWED_NETWORKS   internal networks deliveries may reach ("")
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	timeout := env.Duration("SKYFLOW_WEBHOOK_TIMEOUT", delivery.DefaultTimeout)
	scheduleText := env.String("SKYFLOW_WEBHOOK_SCHEDULE", "")
	jitter := env.Int("SKYFLOW_WEBHOOK_JITTER_PERCENT", int(delivery.DefaultSchedule.Jitter*100))
	disableAfter := env.Duration("SKYFLOW_WEBHOOK_DISABLE_AFTER", delivery.DefaultDisableAfter)
	disableAfterDead := env.Int("SKYFLOW_WEBHOOK_DISABLE_AFTER_DEAD", delivery.DefaultDisableAfterDead)
	concurrency := env.Int("SKYFLOW_WEBHOOK_CONCURRENCY", delivery.DefaultConcurrency)
	inline := env.Duration("SKYFLOW_WEBHOOK_INLINE_BUDGET", delivery.DefaultInlineBudget)
	f.sweepBudget = env.Duration("SKYFLOW_WEBHOOK_SWEEP_BUDGET", 25*time.Second)
	sweepWait := env.Duration("SKYFLOW_WEBHOOK_SWEEP_WAIT", delivery.DefaultSweepWait)
	retention := env.Duration("SKYFLOW_WEBHOOK_RETENTION", delivery.DefaultRetention)
	if err := env.Err(); err != nil {
		return err
	}
	schedule := delivery.DefaultSchedule
	if scheduleText == "" {
		scheduleText = durations(schedule.Delays)
	}
	schedule, err := delivery.ParseSchedule(scheduleText, jitter)
	if err != nil {
		return fmt.Errorf("configuration: SKYFLOW_WEBHOOK_SCHEDULE or _JITTER_PERCENT: %w", err)
	}
	switch {
	case timeout <= 0:
		return errorf("SKYFLOW_WEBHOOK_TIMEOUT must be positive")
	case concurrency < 1:
		return errorf("SKYFLOW_WEBHOOK_CONCURRENCY must be at least 1")
	case disableAfterDead < 0:
		return errorf("SKYFLOW_WEBHOOK_DISABLE_AFTER_DEAD must not be negative")
	}
	if err := f.Lifecycle.Start(ctx, cfg); err != nil {
		return err
	}
	d, err := delivery.NewDispatcher(f.Backend, Source)
	if err != nil {
		return err
	}
	d.Schedule, d.Timeout, d.Concurrency = schedule, timeout, concurrency
	d.DisableAfter, d.DisableAfterDead = disableAfter, disableAfterDead
	d.InlineBudget, d.SweepWait, d.Retention = inline, sweepWait, retention
	f.dispatcher = d
	slog.Info("notify-webhook ready", "attempts", schedule.Attempts(), "retry_span", schedule.Total().String(),
		"allowed_networks", len(f.Backend.Policy.Allowed()))
	return nil
}

func durations(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return strings.Join(out, ",")
}

func errorf(msg string) error { return errors.New("configuration: " + msg) }

// Handle delivers a Skyflow event (from the broker), or on a ping makes
// the attempts that are due.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() == PingType {
		if err := sender.Require(ctx, sender.Ping); err != nil {
			return nil, err
		}
		swept, err := f.dispatcher.Sweep(ctx, time.Now().Add(f.sweepBudget))
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
	d, err := f.dispatcher.Dispatch(ctx, e)
	if d.Created > 0 {
		slog.DebugContext(ctx, "webhook deliveries", "type", e.Type(), "id", e.ID(), "endpoints", d.Endpoints, "created", d.Created, "attempted", d.Attempted)
	}
	return nil, err
}
