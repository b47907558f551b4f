// Package main is the users-roles-set function: it sets the roles a user holds.
// The gateway routes PUT /v1/users/{userID}/roles to it as a com.skyflow.user.roles.set event
// (the contract is in runtime/request); it replies com.skyflow.user.roles.set.response, whose
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
	RequestType = "com.skyflow.user.roles.set"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/users-roles-set"
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
	var req identity.RolesRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := identity.NewService(f.Backend, Source).SetRoles(ctx, p, "user:"+request.Extension(e, request.ExtUserID), req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
