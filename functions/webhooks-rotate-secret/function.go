// Package main is the webhooks-rotate-secret function: it gives a webhook
// endpoint a new signing secret, shown this once; the previous one keeps
// signing beside it for SKYFLOW_WEBHOOK_SECRET_OVERLAP (24h).
// The gateway routes POST /v1/webhooks/{webhookID}/secret/rotate to it as a com.skyflow.webhook.secret.rotate event
// (administrators only; the contract is in runtime/request); it replies
// com.skyflow.webhook.secret.rotate.response, whose data is the HTTP response body.
package main

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.webhook.secret.rotate"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/webhooks-rotate-secret"
)

type Function struct {
	webhooks.Lifecycle
	overlap time.Duration
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Start reads SKYFLOW_WEBHOOK_SECRET_OVERLAP (how long the previous secret
// keeps signing) and connects.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	f.overlap = env.Duration("SKYFLOW_WEBHOOK_SECRET_OVERLAP", webhooks.DefaultSecretOverlap)
	if err := env.Err(); err != nil {
		return err
	}
	return f.Lifecycle.Start(ctx, cfg)
}

func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	p, err := request.Accept(ctx, e, RequestType)
	if err != nil {
		return nil, err
	}
	s := webhooks.NewService(f.Backend, Source)
	s.SecretOverlap = f.overlap
	res, err := s.RotateSecret(ctx, p, request.Extension(e, request.ExtWebhookID))
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, res)
}
