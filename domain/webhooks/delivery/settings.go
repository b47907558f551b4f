package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/config"
)

// DefaultSweepBudget is how long one Sweep (one ping) works.
const DefaultSweepBudget = 25 * time.Second

// Open makes d a db.Backend: it reads the delivery settings and connects
// the webhooks backend (webhooks.Backend.Open), every bad setting reported
// before anything is dialled:
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
//
// Its events' Source is the caller's to set.
func (d *Dispatcher) Open(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	timeout := env.Duration("SKYFLOW_WEBHOOK_TIMEOUT", DefaultTimeout)
	scheduleText := env.String("SKYFLOW_WEBHOOK_SCHEDULE", "")
	jitter := env.Int("SKYFLOW_WEBHOOK_JITTER_PERCENT", int(DefaultSchedule.Jitter*100))
	disableAfter := env.Duration("SKYFLOW_WEBHOOK_DISABLE_AFTER", DefaultDisableAfter)
	disableAfterDead := env.Int("SKYFLOW_WEBHOOK_DISABLE_AFTER_DEAD", DefaultDisableAfterDead)
	concurrency := env.Int("SKYFLOW_WEBHOOK_CONCURRENCY", DefaultConcurrency)
	inline := env.Duration("SKYFLOW_WEBHOOK_INLINE_BUDGET", DefaultInlineBudget)
	sweepBudget := env.Duration("SKYFLOW_WEBHOOK_SWEEP_BUDGET", DefaultSweepBudget)
	sweepWait := env.Duration("SKYFLOW_WEBHOOK_SWEEP_WAIT", DefaultSweepWait)
	retention := env.Duration("SKYFLOW_WEBHOOK_RETENTION", DefaultRetention)
	if err := env.Err(); err != nil {
		return err
	}
	if scheduleText == "" {
		scheduleText = durations(DefaultSchedule.Delays)
	}
	schedule, err := ParseSchedule(scheduleText, jitter)
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
	b := new(webhooks.Backend)
	if err := b.Open(ctx, cfg); err != nil {
		return err
	}
	m, err := newMetrics()
	if err != nil {
		b.Close(ctx)
		return err
	}
	d.Backend, d.metrics, d.Now = b, m, time.Now
	d.Schedule, d.Timeout, d.Concurrency = schedule, timeout, concurrency
	d.DisableAfter, d.DisableAfterDead = disableAfter, disableAfterDead
	d.InlineBudget, d.SweepBudget, d.SweepWait, d.Retention = inline, sweepBudget, sweepWait, retention
	slog.Info("notify-webhook ready", "attempts", schedule.Attempts(), "retry_span", schedule.Total().String(),
		"allowed_networks", len(b.Policy.Allowed()))
	return nil
}

// Ready reports whether the database answers.
func (d *Dispatcher) Ready(ctx context.Context) bool { return d.Backend.Ready(ctx) }

// Close sends the events still unsent and closes the database pool.
func (d *Dispatcher) Close(ctx context.Context) error { return d.Backend.Close(ctx) }

func durations(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return strings.Join(out, ",")
}

func errorf(msg string) error { return errors.New("configuration: " + msg) }
