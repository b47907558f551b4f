package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestRotateGivesANewSecretOnce(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_WEBHOOK_SECRET_OVERLAP"] = "2h"
	f := env.Start(New())
	s := webhookstest.Service(env)
	ep := webhookstest.Subscribe(t, s)
	var res webhooks.RotatedSecret
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID)), ReplyType, &res)
	if res.ID != ep.ID || res.Secret == ep.Secret || !strings.HasPrefix(res.Secret, "whsec_") || res.SecretVersion != 2 {
		t.Fatalf("answered %+v", res)
	}
	if d := time.Until(res.PreviousSecretExpiresAt); d < 119*time.Minute || d > 2*time.Hour {
		t.Fatalf("the previous secret signs for %s, want SKYFLOW_WEBHOOK_SECRET_OVERLAP", d)
	}
	got, _ := s.Get(context.Background(), webhookstest.Admin, ep.ID)
	if got.SecretVersion != 2 || got.PreviousSecretExpiresAt == nil {
		t.Fatalf("endpoint %+v", got)
	}
	ev := webhookstest.Emitted(env, webhooks.SecretRotatedType)
	if len(ev) != 1 || strings.Contains(string(ev[0].Data()), strings.TrimPrefix(res.Secret, "whsec_")) {
		t.Fatalf("rotated events %v", ev)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID("00000000-0000-4000-8000-000000000000")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, webhookstest.WithID(ep.ID)), 403)
}
