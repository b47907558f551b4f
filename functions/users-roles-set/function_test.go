package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	user := env.User()
	var res map[string]any
	env.Call(f, functest.Event(RequestType, map[string]any{"roles": []string{"support"}}, functest.Admin, map[string]string{request.ExtUserID: strings.TrimPrefix(user, "user:")}), ReplyType, &res)
	if fmt.Sprint(res["roles"]) != "[support]" {
		t.Errorf("roles answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"roles": []string{"admin"}}, map[string]string{request.ExtPrincipal: user}, map[string]string{request.ExtUserID: strings.TrimPrefix(user, "user:")}), 403)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
