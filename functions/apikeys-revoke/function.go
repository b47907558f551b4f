// Package main is the apikeys-revoke function: it revokes an API key at once.
// The gateway routes DELETE /v1/apikeys/{keyID} to it as a com.skyflow.apikey.revoke event
// (the contract is in runtime/request); it replies com.skyflow.apikey.revoke.response, whose
// data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.apikey.revoke"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/apikeys-revoke"
)

type Function struct {
	identity.Lifecycle
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
	res, err := identity.NewService(f.Backend, Source).RevokeAPIKey(ctx, p, request.Extension(e, request.ExtKeyID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
