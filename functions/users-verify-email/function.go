// Package main is the users-verify-email function: it marks a user's email address verified with the token of the link sent to it.
// The gateway routes POST /v1/users/verify-email to it as a com.skyflow.user.email.verify event
// (the contract is in runtime/request); it replies com.skyflow.user.email.verify.response, whose
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
	RequestType = "com.skyflow.user.email.verify"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/users-verify-email"
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
	var req identity.VerifyEmailRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).VerifyEmail(ctx, req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
