// Package main is the records-query function: it answers the safe SQL subset from blind indexes.
// The gateway routes POST /v1/vaults/{vaultID}/query to it as a com.skyflow.vault.records.query event
// (the contract is in runtime/request); it replies com.skyflow.vault.records.query.response, whose
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
	RequestType = "com.skyflow.vault.records.query"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/records-query"
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
	var req records.QueryRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := records.New(f.Backend, Source).Query(ctx, p, request.Extension(e, request.ExtVaultID), req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
