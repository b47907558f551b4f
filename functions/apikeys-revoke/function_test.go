package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	key := env.APIKey()
	var res map[string]any
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtKeyID: key.ID}), ReplyType, &res)
	if res["revoked"] != true {
		t.Errorf("revoke answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtKeyID: key.ID}), 404)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
