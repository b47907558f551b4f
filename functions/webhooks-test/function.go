// Package main is the webhooks-test function: it sends a
// com.skyflow.webhook.tested event that notify-webhook delivers to that
// endpoint only, and answers the event and message ids to find in the
// delivery log.
// The gateway routes POST /v1/webhooks/{webhookID}/test to it as a com.skyflow.webhook.test event
// (administrators only; the contract is in runtime/request); it replies
// com.skyflow.webhook.test.response, whose data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.webhook.test"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-test"
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
	res, err := webhooks.NewService(f.Backend, Source).Test(ctx, p, request.Extension(e, request.ExtWebhookID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
