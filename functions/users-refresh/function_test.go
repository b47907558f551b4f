package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	s := env.Login()
	var res identity.Session
	env.Call(f, functest.Event(RequestType, map[string]any{"refreshToken": s.RefreshToken}), ReplyType, &res)
	if res.RefreshToken == "" || res.RefreshToken == s.RefreshToken {
		t.Errorf("refresh answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"refreshToken": s.RefreshToken}), 401)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400.
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}
