package main

import (
	"context"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestDeleteRemovesTheEndpoint(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	s := webhookstest.Service(env)
	ep := webhookstest.Subscribe(t, s)
	keep := webhookstest.Subscribe(t, s)
	var res webhooks.Deleted
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID)), ReplyType, &res)
	if res.ID != ep.ID || !res.Deleted {
		t.Fatalf("answered %+v", res)
	}
	if _, err := s.Get(context.Background(), webhookstest.Admin, ep.ID); err == nil {
		t.Fatal("the endpoint is still there")
	}
	if _, err := s.Get(context.Background(), webhookstest.Admin, keep.ID); err != nil {
		t.Fatal("another endpoint went too")
	}
	ev := webhookstest.Emitted(env, webhooks.DeletedType)
	if len(ev) != 1 || ev[0].Subject() != ep.ID {
		t.Fatalf("deleted events %v", ev)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID)), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID("not-an-id")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, webhookstest.WithID(keep.ID)), 403)
	env.Refuses(f, functest.Event(RequestType, nil, webhookstest.WithID(keep.ID)), 401)
}
