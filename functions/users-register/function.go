// Package main is the users-register function: it registers a user account and announces it for the verification email.
// The gateway routes POST /v1/users to it as a com.skyflow.user.register event
// (the contract is in runtime/request); it replies com.skyflow.user.register.response, whose
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
	RequestType = "com.skyflow.user.register"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/users-register"
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
	var req identity.RegisterRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).Register(ctx, req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
