// Package main is the push-list function: it lists the calling user's Web
// Push subscriptions. The gateway routes GET
// /v1/users/me/push-subscriptions to it as a
// com.skyflow.push.subscriptions.list event; it replies
// com.skyflow.push.subscriptions.list.response: each subscription's id,
// device name, push service (the endpoint's origin), times; never the
// endpoint itself (a capability) or the keys.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.push.subscriptions.list"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/push-list"
)

type Function struct {
	push.Lifecycle
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
	user, err := push.UserOf(p)
	if err != nil {
		return nil, err
	}
	res, err := f.Backend.Store.List(ctx, user)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
