// Package main is the auth-sa-token function: it exchanges a service account's signed assertion for an access token.
// The gateway routes POST /v1/auth/sa/oauth/token to it as a com.skyflow.auth.token.exchange event
// (the contract is in runtime/request); it replies com.skyflow.auth.token.exchange.response, whose
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
	RequestType = "com.skyflow.auth.token.exchange"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/auth-sa-token"
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
	if err := request.AcceptAnonymous(ctx, e, RequestType); err != nil {
		return nil, err
	}
	var req identity.TokenRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).ExchangeToken(ctx, req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
