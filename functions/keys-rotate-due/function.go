// Package main is the keys-rotate-due function: on each ping of its
// PingSource (eventing/sources/keys-rotate-due.yaml) it rotates the data
// keys of every vault whose primary key has reached the vault's rotation
// period, or has sealed SKYFLOW_KEY_MAX_ENCRYPTIONS values (by default
// half of the 2^32 that AES-GCM with random nonces allows a key). Each
// rotation emits com.skyflow.vault.key.rotated with its reason, which
// starts keys-rewrap. It also keeps the key age and use gauges, and
// finishes the crypto-shredding of deleted vaults whose key could not be
// destroyed at once (com.skyflow.vault.shredded).
package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Event types it takes, and the source of its events.
const (
	PingType = "dev.knative.sources.ping"
	Source   = "/skyflow/functions/keys-rotate-due"
)

// principal is who the automatic rotations are recorded as.
var principal = request.Principal{ID: "system:keys-rotate-due"}

type Function struct {
	vaults.Lifecycle
	maxEncryptions int64
	rotated        *prometheus.CounterVec
	oldest, use    prometheus.Gauge
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function {
	var err error // a second New (tests) shares the first one's collectors
	return &Function{
		rotated: metrics.Register(metrics.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_vault_keys_rotated_automatically_total",
			Help: "Vault data-key rotations keys-rotate-due made, by reason (age or usage).",
		}, []string{"reason"}), &err),
		oldest: metrics.Register(metrics.Registry, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skyflow_vault_oldest_primary_key_age_seconds",
			Help: "Age of the oldest primary data key over all vaults, at the last sweep.",
		}), &err),
		use: metrics.Register(metrics.Registry, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skyflow_vault_max_key_usage_ratio",
			Help: "Highest encryption count of a primary data key over all vaults, as a fraction of the rotation threshold, at the last sweep.",
		}), &err),
	}
}

// Start connects and reads SKYFLOW_KEY_MAX_ENCRYPTIONS.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	f.maxEncryptions = int64(env.Int("SKYFLOW_KEY_MAX_ENCRYPTIONS", int(rotation.MaxEncryptions)))
	if err := env.Err(); err != nil {
		return err
	}
	if f.maxEncryptions < 1 {
		return fmt.Errorf("configuration: SKYFLOW_KEY_MAX_ENCRYPTIONS must be at least 1")
	}
	return f.Lifecycle.Start(ctx, cfg)
}

// Handle rotates the vaults that are due; a failure is an error, and the
// next ping finishes the sweep.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() != PingType {
		return nil, apierr.InvalidArgument("keys-rotate-due handles %s events only", PingType)
	}
	if err := sender.Require(ctx, sender.Ping); err != nil {
		return nil, err
	}
	// Deleted vaults whose key destruction failed are shredded first.
	if n, err := shredding.New(f.Backend, Source).FinishShreds(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		slog.InfoContext(ctx, "destroyed the keys of deleted vaults", "vaults", n)
	}
	m := rotation.NewManager(f.Backend, Source)
	done, err := m.RotateDue(ctx, principal, f.maxEncryptions)
	for _, d := range done {
		f.rotated.WithLabelValues(d.Reason).Inc()
		slog.InfoContext(ctx, "rotated a vault's data keys", "vault", d.VaultID, "reason", d.Reason, "primary_key_id", d.Keys.PrimaryKeyID)
	}
	if err != nil {
		return nil, err
	}
	oldest, use, err := m.KeyAges(ctx, f.maxEncryptions)
	if err != nil {
		return nil, err
	}
	f.oldest.Set(oldest.Seconds())
	f.use.Set(use)
	return nil, nil
}
