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
	user := env.User()
	var res identity.User
	env.Call(f, functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: user}), ReplyType, &res)
	if "user:"+res.ID != user || res.Email != "ada@example.com" {
		t.Errorf("profile answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner), 403)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
