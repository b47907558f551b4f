// Package main is the push-unsubscribe function: it deletes one of the
// calling user's Web Push subscriptions. The gateway routes DELETE
// /v1/users/me/push-subscriptions/{subscriptionID} to it as a
// com.skyflow.push.unsubscribe event (the id in the subscriptionid
// extension); it replies com.skyflow.push.unsubscribe.response,
// {"id": "…", "deleted": true}. Another user's subscription is a 404,
// exactly like one that does not exist.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.push.unsubscribe"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/push-unsubscribe"
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
	res, err := f.Backend.Store.Unsubscribe(ctx, user, request.Extension(e, request.ExtSubscriptionID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
