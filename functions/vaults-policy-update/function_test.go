package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	body := map[string]any{"version": 1, "roles": map[string]any{"reader": map[string]any{"tables": map[string]any{"customers": map[string]any{"read": map[string]any{"*": "MASKED"}}}}}}
	var res vaults.View
	env.Call(f, functest.Event(RequestType, body, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if res.PolicyVersion != 2 || len(res.Policy.Roles) != 1 {
		t.Errorf("policy update answered %+v", res)
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
