package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func browserSubscription(t *testing.T, endpoint string) map[string]any {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return map[string]any{"endpoint": endpoint, "expirationTime": nil, "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), "auth": base64.RawURLEncoding.EncodeToString(auth)}}
}

func as(principal string) map[string]string {
	return map[string]string{request.ExtPrincipal: principal}
}

// otherUser registers and verifies a second user.
func otherUser(t *testing.T, env *functest.Env) string {
	t.Helper()
	b, err := identity.Connect(context.Background(), env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Pool.Close(); b.Redis.Close() }()
	s := identity.NewService(b, "/skyflow/functions/users-register")
	u, err := s.Register(context.Background(), identity.RegisterRequest{Email: "grace@example.com", Password: functest.Password, DisplayName: "Grace"})
	if err != nil {
		t.Fatal(err)
	}
	return "user:" + u.ID
}

func TestSubscribeAndResubscribe(t *testing.T) {
	env := functest.New(t)
	fn := New()
	f := env.Start(fn)
	ada := env.User()
	const endpoint = "https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBhIHRlc3Q:APA91bF"
	sub := browserSubscription(t, endpoint)
	sub["deviceName"] = "Ada's laptop"
	var first push.Subscription
	env.Call(f, functest.Event(RequestType, sub, as(ada)), ReplyType, &first)
	if first.ID == "" || first.DeviceName != "Ada's laptop" || first.PushService != "https://fcm.googleapis.com" {
		t.Fatalf("subscribe: %+v", first)
	}
	// The answer never shows the endpoint or the keys.
	raw, _ := json.Marshal(first)
	keys := sub["keys"].(map[string]string)
	for _, secret := range []string{"dGhpcyBpcyBhIHRlc3Q", keys["p256dh"], keys["auth"]} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the answer shows %q: %s", secret, raw)
		}
	}
	// The same endpoint again, with new keys (the browser re-subscribed):
	// the same subscription, updated.
	again := browserSubscription(t, endpoint)
	again["deviceName"] = "Ada's work laptop"
	var second push.Subscription
	env.Call(f, functest.Event(RequestType, again, as(ada)), ReplyType, &second)
	if second.ID != first.ID || second.DeviceName != "Ada's work laptop" || !second.UpdatedAt.After(first.UpdatedAt) && !second.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("resubscribe: %+v, first %+v", second, first)
	}
	// Another user subscribing the same endpoint (someone else signed in on
	// that browser) takes it over: Ada's notices stop reaching it.
	grace := otherUser(t, env)
	var hers push.Subscription
	env.Call(f, functest.Event(RequestType, browserSubscription(t, endpoint), as(grace)), ReplyType, &hers)
	st := &push.Store{Pool: fn.Backend.Pool}
	adaID, _ := push.UserOf(request.Principal{ID: ada})
	if list, err := st.List(context.Background(), adaID); err != nil || len(list.Subscriptions) != 0 {
		t.Fatalf("Ada still has %+v (%v)", list, err)
	}
}

func TestSubscribeRefusesBadRequests(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	ada := env.User()
	good := browserSubscription(t, "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA")
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	keys := good["keys"].(map[string]string)
	for name, body := range map[string]map[string]any{
		"http endpoint":              with("endpoint", "http://updates.push.services.mozilla.com/wpush/v2/x"),
		"loopback endpoint":          with("endpoint", "https://127.0.0.1:9000/push"),
		"private endpoint":           with("endpoint", "https://192.168.0.10/push"),
		"metadata endpoint":          with("endpoint", "https://169.254.169.254/latest"),
		"short p256dh":               with("keys", map[string]string{"p256dh": keys["p256dh"][:80], "auth": keys["auth"]}),
		"long auth":                  with("keys", map[string]string{"p256dh": keys["p256dh"], "auth": keys["auth"] + "AAAA"}),
		"no keys":                    with("keys", map[string]string{}),
		"an unknown field":           with("subscriptionId", "x"),
		"expirationTime in the past": with("expirationTime", 1000),
	} {
		t.Run(name, func(t *testing.T) { env.Refuses(f, functest.Event(RequestType, body, as(ada)), 400) })
	}
	// A service account has no push subscriptions; no principal is a 401.
	env.Refuses(f, functest.Event(RequestType, good, functest.Owner), 403)
	env.Refuses(f, functest.Event(RequestType, good), 401)
	env.Refuses(f, functest.Event("com.skyflow.other", good, as(ada)), 400)
}

func TestAllowedNetworksLetAPrivatePushServiceThrough(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_PUSH_ALLOWED_NETWORKS"] = "127.0.0.0/8"
	f := env.Start(New())
	ada := env.User()
	var s push.Subscription
	env.Call(f, functest.Event(RequestType, browserSubscription(t, "https://127.0.0.1:9443/push/1"), as(ada)), ReplyType, &s)
	if s.PushService != "https://127.0.0.1:9443" {
		t.Fatalf("%+v", s)
	}
	env.Refuses(f, functest.Event(RequestType, browserSubscription(t, "https://10.0.0.1/push/1"), as(ada)), 400)
}

func TestAUserKeepsAtMostTwentySubscriptions(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	ada := env.User()
	for i := range push.MaxPerUser {
		var s push.Subscription
		env.Call(f, functest.Event(RequestType, browserSubscription(t, "https://fcm.googleapis.com/fcm/send/"+strings.Repeat("x", i+1)), as(ada)), ReplyType, &s)
	}
	env.Refuses(f, functest.Event(RequestType, browserSubscription(t, "https://fcm.googleapis.com/fcm/send/one-too-many"), as(ada)), 409)
	// Re-subscribing one of the twenty still works.
	var s push.Subscription
	env.Call(f, functest.Event(RequestType, browserSubscription(t, "https://fcm.googleapis.com/fcm/send/x"), as(ada)), ReplyType, &s)
}

func TestStartNamesMissingSettings(t *testing.T) {
	err := New().Start(context.Background(), map[string]string{"SKYFLOW_PUSH_ALLOWED_NETWORKS": "nonsense"})
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "SKYFLOW_PUSH_ALLOWED_NETWORKS") {
		t.Fatalf("Start = %v", err)
	}
}
