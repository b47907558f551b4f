// Package main is the records-get function: it reads records of a table by skyflow ids, by column values, or page by page.
// The gateway routes GET /v1/vaults/{vaultID}/{table} to it as a com.skyflow.vault.records.get event
// (the contract is in runtime/request); it replies com.skyflow.vault.records.get.response, whose
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
	RequestType = "com.skyflow.vault.records.get"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/records-get"
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
	params, err := records.GetParamsOf(e)
	if err != nil {
		return nil, err
	}
	res, err := records.New(f.Backend, Source).Get(ctx, p, request.Extension(e, request.ExtVaultID), request.Extension(e, request.ExtTable), params)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
