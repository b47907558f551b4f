// Package main is the vaults-delete function: it deletes a vault with
// everything in it and then destroys the vault's own key, so that no
// backup of the database can be decrypted for it any more
// (crypto-shredding, domain/shredding). The gateway routes DELETE
// /v1/management/vaults/{vaultID} to it as a com.skyflow.vault.delete event
// (runtime/request); it replies com.skyflow.vault.delete.response.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.vault.delete"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/vaults-delete"
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
	res, err := shredding.New(f.Backend, Source).DeleteVault(ctx, p, request.Extension(e, request.ExtVaultID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
