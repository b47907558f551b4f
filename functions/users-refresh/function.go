// Package main is the users-refresh function: it trades a refresh token for a new session, revoking the session when a spent token comes back.
// The gateway routes POST /v1/auth/refresh to it as a com.skyflow.user.session.refresh event
// (the contract is in runtime/request); it replies com.skyflow.user.session.refresh.response, whose
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
	RequestType = "com.skyflow.user.session.refresh"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/users-refresh"
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
	var req identity.RefreshRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).Refresh(ctx, req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
