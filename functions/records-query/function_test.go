package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	env.Insert(vault, map[string]string{"name": "Ada", "email": "ada@example.com"})
	var res records.GetResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"query": "SELECT name FROM customers WHERE email = 'ada@example.com'"}, functest.Owner, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if len(res.Records) != 1 || string(res.Records[0].Fields["name"]) != `"Ada"` {
		t.Errorf("query answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"query": "DELETE FROM customers"}, functest.Owner, map[string]string{request.ExtVaultID: vault}), 400)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
