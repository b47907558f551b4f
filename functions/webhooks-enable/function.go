// Package main is the webhooks-enable function: it re-enables a webhook
// endpoint that was disabled (after failing for long, or answering 410);
// the deliveries pending when it was disabled resume.
// The gateway routes POST /v1/webhooks/{webhookID}/enable to it as a com.skyflow.webhook.enable event
// (administrators only; the contract is in runtime/request); it replies
// com.skyflow.webhook.enable.response, whose data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.webhook.enable"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-enable"
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
	res, err := webhooks.NewService(f.Backend, Source).Enable(ctx, p, request.Extension(e, request.ExtWebhookID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
