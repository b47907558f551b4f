// Package main is the webhooks-list function: it lists webhook endpoints,
// newest first, paged (page_size, page_token) and optionally by status;
// never a secret.
// The gateway routes GET /v1/webhooks to it as a com.skyflow.webhook.list event
// (administrators only; the contract is in runtime/request); it replies
// com.skyflow.webhook.list.response, whose data is the HTTP response body.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.webhook.list"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-list"
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
	params, err := request.Query(e)
	if err != nil {
		return nil, err
	}
	res, err := webhooks.NewService(f.Backend, Source).List(ctx, p, params)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
