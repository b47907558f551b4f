// Package main is the users-logout function: it ends a session: its refresh tokens are revoked and its access tokens denied.
// The gateway routes POST /v1/auth/logout to it as a com.skyflow.user.logout event
// (the contract is in runtime/request); it replies com.skyflow.user.logout.response, whose
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
	RequestType = "com.skyflow.user.logout"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/users-logout"
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
	var req identity.RefreshRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).Logout(ctx, p, req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
