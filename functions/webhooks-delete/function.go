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
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Event types and the source of replies and events.
const (
	RequestType = "com.skyflow.webhook.delete"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-delete"
)

// Function is the webhooks-delete operation.
type Function struct {
	webhooks.Lifecycle // Start connects the backend; Ready and Stop
}

// New is called once per process.
func New() *Function { return &Function{} }

// Handle answers one request.
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
