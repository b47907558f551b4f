package main

import (
	"fmt"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	var res records.BatchResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"continueOnError": true, "records": []any{
		map[string]any{"tableName": "customers", "method": "POST", "fields": map[string]any{"name": "Ada"}},
		map[string]any{"tableName": "customers", "method": "DELETE", "ID": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
	}}, functest.Owner, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if res.VaultID != vault || len(res.Responses) != 2 || fmt.Sprint(res.Responses[1]) != "map[Body:map[error:records[1]: No Records Found. Check the skyflow_id and the table name.] Status:404]" {
		t.Errorf("batch answered %+v", res)
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
