package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	var res identity.User
	env.Call(f, functest.Event(RequestType, map[string]any{"email": "ada@example.com", "password": "correct horse battery staple", "displayName": "Ada"}), ReplyType, &res)
	if res.Email != "ada@example.com" || res.EmailVerified || res.ID == "" {
		t.Errorf("register answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"email": "ada@example.com", "password": "correct horse battery staple", "displayName": "Ada"}), 409)
	env.Refuses(f, functest.Event(RequestType, map[string]any{"email": "ada@example.com", "password": "correct horse battery staple", "displayName": "Ada", "admin": true}), 400)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400.
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}
