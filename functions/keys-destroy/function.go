// Package main is the keys-destroy function: it deletes every data-key
// version of a vault but the primary, once the rewrap has moved every value
// to the primary, so that backups taken before can no longer be decrypted
// where older versions sealed them. The gateway routes POST
// /v1/management/vaults/{vaultID}/keys/destroy to it as a
// com.skyflow.vault.keys.destroy event; it replies
// com.skyflow.vault.keys.destroy.response and emits
// com.skyflow.vault.keys.destroyed.
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
	RequestType = "com.skyflow.vault.keys.destroy"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/keys-destroy"
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
	res, err := rotation.NewManager(f.Backend, Source).DestroyOldKeys(ctx, p, request.Extension(e, request.ExtVaultID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
