// Package main is the users-login function: it logs a user in: an access token and a refresh token.
// The gateway routes POST /v1/auth/login to it as a com.skyflow.user.login event
// (the contract is in runtime/request); it replies com.skyflow.user.login.response, whose
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
	RequestType = "com.skyflow.user.login"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/users-login"
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
	var req identity.LoginRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).Login(ctx, req, request.Extension(e, request.ExtClientAddr))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
