// Package main is the push-subscribe function: it keeps a browser's or
// device's Web Push subscription for the calling user, so that
// notify-push can reach it. The gateway routes POST
// /v1/users/me/push-subscriptions to it as a com.skyflow.push.subscribe
// event whose data is the browser's PushSubscription JSON plus an optional
// deviceName; it replies com.skyflow.push.subscribe.response with the
// subscription as listed (its id, name and push service; never the
// endpoint or the keys). The request is checked strictly (an https
// endpoint on the public Internet unless SKYFLOW_PUSH_ALLOWED_NETWORKS
// allows its address, a 65-byte P-256 key, a 16-byte secret, base64url);
// subscribing the same endpoint again updates it.
package main

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.push.subscribe"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/push-subscribe"
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
	var req push.SubscribeRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	sub, err := req.Check(f.Backend.Policy, time.Now())
	if err != nil {
		return nil, err
	}
	res, err := f.Backend.Store.Subscribe(ctx, user, sub)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
