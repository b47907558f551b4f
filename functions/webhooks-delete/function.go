// Package main is the webhooks-delete function: it deletes a webhook
// endpoint and its delivery log; nothing more is delivered to it.
// The gateway routes DELETE /v1/webhooks/{webhookID} to it as a com.skyflow.webhook.delete event
// (administrators only; the contract is in runtime/request); it replies
// com.skyflow.webhook.delete.response, whose data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.webhook.delete"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-delete"
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
	res, err := webhooks.NewService(f.Backend, Source).Delete(ctx, p, request.Extension(e, request.ExtWebhookID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
