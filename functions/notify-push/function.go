// Package main is the notify-push function: it sends Web Push
// notifications to the browsers and devices people subscribed
// (push-subscribe). Its Triggers bring com.skyflow.user.login.locked and
// com.skyflow.apikey.created (security notices) and
// com.skyflow.webhook.disabled (webhooks notices); domain/notify maps each
// to a notice and its recipients, and pushes it (notify.Pusher: the VAPID
// key, the address policy, pushing to each subscription once) to the users
// whose preferences choose push for its kind.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

type Function struct {
	db.Lifecycle[notify.Pusher, *notify.Pusher]
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Handle pushes the event's notice to each recipient's subscriptions.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	return nil, f.Backend.Send(ctx, e)
}
