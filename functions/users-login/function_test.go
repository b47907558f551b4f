package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.User()
	var res identity.Session
	env.Call(f, functest.Event(RequestType, map[string]any{"email": "ada@example.com", "password": "correct horse battery staple"}, map[string]string{request.ExtClientAddr: "192.0.2.1"}), ReplyType, &res)
	if res.TokenType != "Bearer" || res.AccessToken == "" || res.RefreshToken == "" {
		t.Errorf("login answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"email": "ada@example.com", "password": "wrong password here"}, map[string]string{request.ExtClientAddr: "192.0.2.1"}), 401)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400.
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}
