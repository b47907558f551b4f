// Package main is the vaults-create function: it creates a vault from a schema and an optional policy.
// The gateway routes POST /v1/management/vaults to it as a com.skyflow.vault.create event
// (the contract is in runtime/request); it replies com.skyflow.vault.create.response, whose
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
	RequestType = "com.skyflow.vault.create"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/vaults-create"
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
	res, err := vaults.NewManager(f.Backend, Source).Create(ctx, p, e.Data())
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
