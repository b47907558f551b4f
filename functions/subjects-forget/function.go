// Package main is the subjects-forget function: it forgets one data
// subject of a vault ("right to be forgotten", crypto-shredding): every
// record of the vault's data_subject tables that belongs to the subject is
// deleted with its tokens and the subject's own key, in one transaction,
// and then the subject's key is shredded from every backup too (the vault's
// subject epoch key that wrapped it is destroyed, domain/shredding/subjects.go)
// for up to SKYFLOW_FORGET_SHRED_BUDGET; what is left, keys-rewrap finishes
// (com.skyflow.vault.subject.forgotten, then its ping). The gateway routes
// POST /v1/vaults/{vaultID}/subjects/forget to it as a
// com.skyflow.vault.subject.forget event (the contract is in
// runtime/request); it replies com.skyflow.vault.subject.forget.response,
// whose data is the HTTP response body. Neither the reply nor any event
// repeats the subject's identifier.
package main

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.vault.subject.forget"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/subjects-forget"
)

type Function struct {
	vaults.Lifecycle
	shredFor time.Duration
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Start connects and reads SKYFLOW_FORGET_SHRED_BUDGET: how long a forget
// works on the shredding before it answers (pending past it; keys-rewrap
// finishes). Zero leaves all of it to keys-rewrap.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	f.shredFor = env.Duration("SKYFLOW_FORGET_SHRED_BUDGET", 20*time.Second)
	if err := env.Err(); err != nil {
		return err
	}
	return f.Lifecycle.Start(ctx, cfg)
}

func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	p, err := request.Accept(ctx, e, RequestType)
	if err != nil {
		return nil, err
	}
	var req records.ForgetRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := records.New(f.Backend, Source).Forget(ctx, p, request.Extension(e, request.ExtVaultID), req, f.shredFor)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
