package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func subscribe(t *testing.T, st *push.Store, user uuid.UUID, endpoint, name string) *push.Subscription {
	t.Helper()
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	s, err := st.Subscribe(context.Background(), user, &push.NewSubscription{Endpoint: endpoint, P256dh: k.PublicKey().Bytes(), Auth: auth, DeviceName: name})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestListShowsOwnSubscriptionsWithoutEndpointsOrKeys(t *testing.T) {
	env := functest.New(t)
	fn := New()
	f := env.Start(fn)
	ada := env.User()
	adaID, _ := push.UserOf(request.Principal{ID: ada})
	var empty push.Subscriptions
	env.Call(f, functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: ada}), ReplyType, &empty)
	if empty.Subscriptions == nil || len(empty.Subscriptions) != 0 {
		t.Fatalf("no subscriptions: %+v", empty)
	}
	st := &push.Store{Pool: fn.Backend.Pool}
	subscribe(t, st, adaID, "https://fcm.googleapis.com/fcm/send/capability-one", "laptop")
	subscribe(t, st, adaID, "https://updates.push.services.mozilla.com/wpush/v2/capability-two", "phone")
	var list push.Subscriptions
	env.Call(f, functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: ada}), ReplyType, &list)
	if len(list.Subscriptions) != 2 || list.Subscriptions[0].DeviceName != "laptop" || list.Subscriptions[1].PushService != "https://updates.push.services.mozilla.com" {
		t.Fatalf("list: %+v", list)
	}
	// Another user sees none of Ada's.
	other := "user:" + uuid.NewString()
	var theirs push.Subscriptions
	env.Call(f, functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: other}), ReplyType, &theirs)
	if len(theirs.Subscriptions) != 0 {
		t.Fatalf("another user sees %+v", theirs)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner), 403)
	env.Refuses(f, functest.Event(RequestType, nil), 401)
}

func TestTheReplyNeverCarriesAnEndpoint(t *testing.T) {
	env := functest.New(t)
	fn := New()
	f := env.Start(fn)
	ada := env.User()
	adaID, _ := push.UserOf(request.Principal{ID: ada})
	subscribe(t, &push.Store{Pool: fn.Backend.Pool}, adaID, "https://fcm.googleapis.com/fcm/send/the-capability", "")
	// Only the gateway's requests are answered.
	if _, err := f.Handle(context.Background(), functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: ada})); err == nil {
		t.Fatal("a request without the gateway's assertion was answered")
	}
	var list push.Subscriptions
	env.Call(f, functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: ada}), ReplyType, &list)
	if len(list.Subscriptions) != 1 || strings.Contains(list.Subscriptions[0].PushService, "capability") {
		t.Fatalf("%+v", list)
	}
}
