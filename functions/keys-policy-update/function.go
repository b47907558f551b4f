// Package main is the keys-policy-update function: it sets how often a
// vault's data keys rotate on their own (keys-rotate-due does it). The
// gateway routes PUT /v1/management/vaults/{vaultID}/keys/policy to it as a
// com.skyflow.vault.keys.policy.update event (runtime/request); it replies
// com.skyflow.vault.keys.policy.update.response with the keys' status.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.vault.keys.policy.update"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/keys-policy-update"
)

type Function struct {
	vaults.Lifecycle
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	p, err := request.Accept(ctx, e, RequestType)
	if err != nil {
		return nil, err
	}
	var kp rotation.KeyPolicy
	if err := request.Decode(e, &kp); err != nil {
		return nil, err
	}
	res, err := rotation.NewManager(f.Backend, Source).SetKeyPolicy(ctx, p, request.Extension(e, request.ExtVaultID), kp)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
