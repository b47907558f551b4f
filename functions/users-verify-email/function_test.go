package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	u, tok := env.UnverifiedUser()
	var res identity.User
	env.Call(f, functest.Event(RequestType, map[string]any{"token": tok}), ReplyType, &res)
	if res.ID != u || !res.EmailVerified {
		t.Errorf("verify answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"token": tok}), 400)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400.
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}
