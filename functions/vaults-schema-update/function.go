// Package main is the vaults-schema-update function: it stores a new version of a vault's schema, refusing changes that would strand stored data.
// The gateway routes PUT /v1/management/vaults/{vaultID}/schema to it as a com.skyflow.vault.schema.update event
// (the contract is in runtime/request); it replies com.skyflow.vault.schema.update.response, whose
// data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.vault.schema.update"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/vaults-schema-update"
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
	res, err := vaults.NewManager(f.Backend, Source).UpdateSchema(ctx, p, request.Extension(e, request.ExtVaultID), e.Data())
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
