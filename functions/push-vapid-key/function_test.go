package main

import (
	"context"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestAnswersThePublicKeyOnly(t *testing.T) {
	v, err := push.GenerateVAPID("mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	env := functest.New(t)
	env.Config["SKYFLOW_VAPID_PUBLIC_KEY"] = v.PublicKey
	f := env.Start(New())
	var res VAPIDKey
	env.Call(f, functest.Event(RequestType, nil), ReplyType, &res)
	if res.PublicKey != v.PublicKey {
		t.Fatalf("publicKey %q, want %q", res.PublicKey, v.PublicKey)
	}
	if b, err := push.DecodePublicKey(res.PublicKey); err != nil || b[0] != 4 {
		t.Fatalf("not an applicationServerKey: %v", err)
	}
	env.Refuses(f, functest.Event("com.skyflow.other", nil), 400)
}

func TestStartRefusesABadKey(t *testing.T) {
	for _, cfg := range []map[string]string{{}, {"SKYFLOW_VAPID_PUBLIC_KEY": "not-a-key"}} {
		err := New().Start(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "SKYFLOW_VAPID_PUBLIC_KEY") {
			t.Errorf("Start(%v) = %v", cfg, err)
		}
	}
}
