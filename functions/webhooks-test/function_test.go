package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/shared/functest"
	"github.com/skyflow-oss/skyflow/shared/request"
	"github.com/skyflow-oss/skyflow/shared/webhooks"
)

var admin = request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}

// service is the webhook service on the environment, for setting up
// endpoints (at a public address that needs no name lookup).
func service(t *testing.T, env *functest.Env) *webhooks.Service {
	t.Helper()
	b, err := webhooks.Connect(context.Background(), env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Pool.Close)
	return webhooks.NewService(b, "/skyflow/functions/webhooks-subscribe")
}

func subscribe(t *testing.T, s *webhooks.Service, types ...string) *webhooks.NewEndpoint {
	t.Helper()
	if len(types) == 0 {
		types = []string{"com.skyflow.vault.*"}
	}
	ep, err := s.Subscribe(context.Background(), admin, webhooks.SubscribeRequest{URL: "https://93.184.216.34/hooks", EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// withID is the request's webhookid extension.
func withID(id string) map[string]string { return map[string]string{request.ExtWebhookID: id} }

// emitted are the events of one type the function published, each
// checked against the catalog.
func emitted(t *testing.T, env *functest.Env, typ string) []event.Event {
	t.Helper()
	out := env.Sink.OfType(typ)
	for _, e := range out {
		if err := catalog.Validate(e); err != nil {
			t.Error(err)
		}
	}
	return out
}

func TestTestPublishesTheTestedEvent(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	ep := subscribe(t, service(t, env), "com.skyflow.user.registered")
	var res webhooks.TestSent
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, withID(ep.ID)), ReplyType, &res)
	if res.WebhookID != ep.ID || res.EventType != webhooks.TestedType || res.MessageID != webhooks.MessageID(ep.ID, Source, res.EventID) {
		t.Fatalf("answered %+v", res)
	}
	ev := emitted(t, env, webhooks.TestedType)
	if len(ev) != 1 || ev[0].ID() != res.EventID || ev[0].Source() != Source {
		t.Fatalf("tested events %v", ev)
	}
	var data map[string]string
	json.Unmarshal(ev[0].Data(), &data)
	if data["webhook_id"] != ep.ID || len(data) != 1 {
		t.Fatalf("tested event data %v", data)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, withID("00000000-0000-4000-8000-000000000000")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, withID(ep.ID)), 403)
}
