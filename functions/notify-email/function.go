// Package main is the notify-email function: it emails people what the
// platform's events mean for them. Its Triggers bring
// com.skyflow.user.registered (the verification email, always sent),
// com.skyflow.user.login.locked and com.skyflow.apikey.created (security
// notices) and com.skyflow.webhook.disabled (webhooks notices); domain/notify
// maps each to a notice, its recipients and their preferences, and mails
// it (notify.Emailer: the relay, the templates, sending each email once).
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Source is where the function's verification tokens come from (domain/identity).
const Source = notify.EmailSource

type Function struct {
	db.Lifecycle[notify.Emailer, *notify.Emailer]
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Handle emails the event's notice to each of its recipients.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	return nil, f.Backend.Send(ctx, e)
}
