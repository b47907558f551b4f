// Package main is the keys-rotate function: it gives a vault's data keys a
// new primary version. The gateway routes POST
// /v1/management/vaults/{vaultID}/keys/rotate to it as a
// com.skyflow.vault.keys.rotate event (runtime/request); it replies
// com.skyflow.vault.keys.rotate.response with the vault's key versions, and
// emits com.skyflow.vault.key.rotated, on which the vault's older
// ciphertext is re-encrypted.
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
	RequestType = "com.skyflow.vault.keys.rotate"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/keys-rotate"
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
	res, err := rotation.NewManager(f.Backend, Source).RotateKeys(ctx, p, request.Extension(e, request.ExtVaultID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
