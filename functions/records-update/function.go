// Package main is the records-update function: it replaces fields of one record.
// The gateway routes PUT /v1/vaults/{vaultID}/{table}/{skyflow_id} to it as a com.skyflow.vault.record.update event
// (the contract is in runtime/request); it replies com.skyflow.vault.record.update.response, whose
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
	RequestType = "com.skyflow.vault.record.update"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/records-update"
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
	var req records.UpdateRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := records.New(f.Backend, Source).Update(ctx, p, request.Extension(e, request.ExtVaultID), request.Extension(e, request.ExtTable), request.Extension(e, request.ExtSkyflowID), req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
