package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	s := env.Login()
	var res map[string]bool
	env.Call(f, functest.Event(RequestType, map[string]any{"refreshToken": s.RefreshToken}, map[string]string{request.ExtPrincipal: s.Principal}), ReplyType, &res)
	if !res["loggedOut"] {
		t.Errorf("logout answered %+v", res)
	}
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
