package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func subscribe(t *testing.T, st *push.Store, user uuid.UUID, endpoint string) *push.Subscription {
	t.Helper()
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	s, err := st.Subscribe(context.Background(), user, &push.NewSubscription{Endpoint: endpoint, P256dh: k.PublicKey().Bytes(), Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func del(principal, id string) map[string]string {
	return map[string]string{request.ExtPrincipal: principal, request.ExtSubscriptionID: id}
}

func TestUnsubscribeOnlyOwnSubscriptions(t *testing.T) {
	env := functest.New(t)
	fn := New()
	f := env.Start(fn)
	ada := env.User()
	adaID, _ := push.UserOf(request.Principal{ID: ada})
	st := &push.Store{Pool: fn.Backend.Pool}
	s := subscribe(t, st, adaID, "https://fcm.googleapis.com/fcm/send/one")
	keep := subscribe(t, st, adaID, "https://fcm.googleapis.com/fcm/send/two")

	// Someone else cannot delete it, and learns nothing: the same 404 as
	// for an id that does not exist.
	env.Refuses(f, functest.Event(RequestType, nil, del("user:"+uuid.NewString(), s.ID)), 404)
	env.Refuses(f, functest.Event(RequestType, nil, del(ada, uuid.NewString())), 404)
	env.Refuses(f, functest.Event(RequestType, nil, del(ada, "not-a-uuid")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, del("sa:owner", s.ID)), 403)
	env.Refuses(f, functest.Event(RequestType, nil, map[string]string{request.ExtSubscriptionID: s.ID}), 401)

	var res push.Unsubscribed
	env.Call(f, functest.Event(RequestType, nil, del(ada, s.ID)), ReplyType, &res)
	if res.ID != s.ID || !res.Deleted {
		t.Fatalf("unsubscribe: %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, nil, del(ada, s.ID)), 404)
	list, err := st.List(context.Background(), adaID)
	if err != nil || len(list.Subscriptions) != 1 || list.Subscriptions[0].ID != keep.ID {
		t.Fatalf("left: %+v, %v", list, err)
	}
}
