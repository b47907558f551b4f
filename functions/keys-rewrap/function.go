// Package main is the keys-rewrap function: after a vault's data keys
// rotate (com.skyflow.vault.key.rotated, from the broker), it re-encrypts
// the vault's cells that older keys sealed under the new primary, in
// bounded batches, without blocking reads or writes. After a data subject
// is forgotten (com.skyflow.vault.subject.forgotten, from the broker) it
// finishes the subject's crypto-shredding that the forget left pending:
// it rewraps the vault's other subject keys under a new epoch key and
// destroys the old epoch's key (shredding.Shredder.ShredSubjects), announcing
// each finished forget (com.skyflow.vault.subject.shredded). Its
// PingSource (eventing/sources/keys-rewrap.yaml) resumes any rewrap and
// any shredding left unfinished by a crash, a redeploy or the time budget.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Event types it takes, and the source of its events.
const (
	RotatedType   = rotation.KeyRotatedType
	ForgottenType = "com.skyflow.vault.subject.forgotten" // records.SubjectForgottenType, without linking domain/records
	PingType      = "dev.knative.sources.ping"
	Source        = "/skyflow/functions/keys-rewrap"
)

type Function struct {
	vaults.Lifecycle
	batch          int
	budget, settle time.Duration
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Start connects and reads SKYFLOW_REWRAP_BATCH (cells a transaction),
// SKYFLOW_REWRAP_BUDGET (work per event, under the function's timeout) and
// SKYFLOW_REWRAP_SETTLE (see rotation.DefaultRewrapSettle).
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	f.batch = env.Int("SKYFLOW_REWRAP_BATCH", 500)
	f.budget = env.Duration("SKYFLOW_REWRAP_BUDGET", 90*time.Second)
	f.settle = env.Duration("SKYFLOW_REWRAP_SETTLE", rotation.DefaultRewrapSettle)
	if err := env.Err(); err != nil {
		return err
	}
	return f.Lifecycle.Start(ctx, cfg)
}

// Handle rewraps the rotated vault, or shreds the forgotten subjects of a
// vault, or on a ping does both for every vault with unfinished work, for
// up to the budget. What is left is resumed by the next ping; only a
// failure is an error (and retried by the broker).
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	deadline := time.Now().Add(f.budget)
	var ids []string
	switch e.Type() {
	case RotatedType:
		if err := sender.Require(ctx, sender.Broker); err != nil {
			return nil, err
		}
		ids = []string{request.Extension(e, request.ExtVaultID)}
	case ForgottenType:
		if err := sender.Require(ctx, sender.Broker); err != nil {
			return nil, err
		}
		vault := request.Extension(e, request.ExtVaultID)
		if vault == "" {
			return nil, apierr.InvalidArgument("a %s event needs the vaultid extension", ForgottenType)
		}
		n, err := shredding.New(f.Backend, Source).ShredSubjects(ctx, vault, deadline)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			slog.InfoContext(ctx, "shredded forgotten data subjects", "vault", vault, "forgets", n)
		}
		return nil, nil
	case PingType:
		if err := sender.Require(ctx, sender.Ping); err != nil {
			return nil, err
		}
		var err error
		if ids, err = rotation.NewManager(f.Backend, Source).UnfinishedRewraps(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, apierr.InvalidArgument("keys-rewrap handles %s, %s and %s events only", RotatedType, ForgottenType, PingType)
	}
	for _, id := range ids {
		if time.Now().After(deadline) {
			break
		}
		if _, err := rotation.NewManager(f.Backend, Source).Rewrap(ctx, id, f.batch, deadline, f.settle); err != nil {
			return nil, err
		}
	}
	if e.Type() == PingType && time.Now().Before(deadline) {
		n, err := shredding.New(f.Backend, Source).FinishSubjectShreds(ctx, deadline)
		if n > 0 {
			slog.InfoContext(ctx, "shredded forgotten data subjects", "forgets", n)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}
