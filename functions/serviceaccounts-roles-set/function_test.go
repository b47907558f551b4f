package main

import (
	"fmt"
	"testing"

	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	creds := env.ServiceAccount()
	var res map[string]any
	env.Call(f, functest.Event(RequestType, map[string]any{"roles": []string{"reader", "owner"}}, functest.Admin, map[string]string{request.ExtClientID: creds.ClientID}), ReplyType, &res)
	if fmt.Sprint(res["roles"]) != "[owner reader]" {
		t.Errorf("roles answered %+v", res)
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
