package main

import (
	"encoding/json"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestTestPublishesTheTestedEvent(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	ep := webhookstest.Subscribe(t, webhookstest.Service(env), "com.skyflow.user.registered")
	var res webhooks.TestSent
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID)), ReplyType, &res)
	if res.WebhookID != ep.ID || res.EventType != webhooks.TestedType || res.MessageID != webhooks.MessageID(ep.ID, Source, res.EventID) {
		t.Fatalf("answered %+v", res)
	}
	ev := webhookstest.Emitted(env, webhooks.TestedType)
	if len(ev) != 1 || ev[0].ID() != res.EventID || ev[0].Source() != Source {
		t.Fatalf("tested events %v", ev)
	}
	var data map[string]string
	json.Unmarshal(ev[0].Data(), &data)
	if data["webhook_id"] != ep.ID || len(data) != 1 {
		t.Fatalf("tested event data %v", data)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID("00000000-0000-4000-8000-000000000000")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, webhookstest.WithID(ep.ID)), 403)
}
