// Package main is the webhooks-subscribe function: it subscribes a webhook
// endpoint (URL, event types or prefixes, an optional vault) and returns it
// with its signing secret, shown this once.
// The gateway routes POST /v1/webhooks to it as a com.skyflow.webhook.subscribe event
// (administrators only; the contract is in runtime/request); it replies
// com.skyflow.webhook.subscribe.response, whose data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.webhook.subscribe"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-subscribe"
)

type Function struct {
	webhooks.Lifecycle
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
	var req webhooks.SubscribeRequest
	if err := request.Decode(e, &req); err != nil {
		return nil, err
	}
	res, err := webhooks.NewService(f.Backend, Source).Subscribe(ctx, p, req)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
