package main

import (
	"context"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestEnableReenablesADisabledEndpoint(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	s := webhookstest.Service(env)
	ep := webhookstest.Subscribe(t, s)
	if _, err := s.Pool.Exec(context.Background(), `UPDATE webhook_endpoints SET status = 'disabled', disabled_at = now(),
		disabled_reason = 'the endpoint answered 410 Gone', failing_since = now(), consecutive_dead = 3 WHERE id = $1`, ep.ID); err != nil {
		t.Fatal(err)
	}
	var res webhooks.Endpoint
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID)), ReplyType, &res)
	if res.Status != webhooks.StatusActive || res.DisabledAt != nil || res.DisabledReason != "" || res.FailingSince != nil {
		t.Fatalf("answered %+v", res)
	}
	if ev := webhookstest.Emitted(env, webhooks.EnabledType); len(ev) != 1 || ev[0].Subject() != ep.ID {
		t.Fatalf("enabled events %v", ev)
	}
	// Enabling an active endpoint changes nothing and says nothing.
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID)), ReplyType, &res)
	if ev := webhookstest.Emitted(env, webhooks.EnabledType); len(ev) != 1 {
		t.Fatalf("%d enabled events", len(ev))
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID("00000000-0000-4000-8000-000000000000")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, webhookstest.WithID(ep.ID)), 403)
}
