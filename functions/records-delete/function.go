// Package main is the records-delete function: it deletes one record.
// The gateway routes DELETE /v1/vaults/{vaultID}/{table}/{skyflow_id} to it as a com.skyflow.vault.record.delete event
// (the contract is in runtime/request); it replies com.skyflow.vault.record.delete.response, whose
// data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.vault.record.delete"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/records-delete"
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
	res, err := records.New(f.Backend, Source).Delete(ctx, p, request.Extension(e, request.ExtVaultID), request.Extension(e, request.ExtTable), request.Extension(e, request.ExtSkyflowID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
