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
	body := map[string]any{"version": 1, "name": "renamed", "tables": []any{map[string]any{"name": "customers", "columns": []any{
		map[string]any{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
		map[string]any{"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "validation": map[string]any{"kind": "EMAIL"}},
		map[string]any{"name": "ssn", "data_type": "string", "token_type": "DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": map[string]any{"kind": "SSN"}},
		map[string]any{"name": "notes", "data_type": "string"}}}}}
	var res vaults.View
	env.Call(f, functest.Event(RequestType, body, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if res.SchemaVersion != 2 || res.Name != "renamed" || len(res.Tables[0].Columns) != 4 {
		t.Errorf("schema update answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, body, functest.Admin, map[string]string{request.ExtVaultID: vault}), 409)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
