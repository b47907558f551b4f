// Package main is the keys-get function: it shows a vault's data-key
// versions and how far the rewrap to the primary has got. The gateway
// routes GET /v1/management/vaults/{vaultID}/keys to it as a
// com.skyflow.vault.keys.get event (runtime/request); it replies
// com.skyflow.vault.keys.get.response. Key material is never shown.
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
	RequestType = "com.skyflow.vault.keys.get"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/keys-get"
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
	res, err := rotation.NewManager(f.Backend, Source).Keys(ctx, p, request.Extension(e, request.ExtVaultID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
