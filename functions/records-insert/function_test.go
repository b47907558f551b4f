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
	var res records.InsertResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"records": []any{map[string]any{"fields": map[string]any{"name": "Ada", "ssn": "123-45-6789"}}}, "tokenization": true}, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}), ReplyType, &res)
	if len(res.Records) != 1 || res.Records[0].Tokens["name"] == "" || len(res.Records[0].Tokens["ssn"]) != 11 {
		t.Errorf("insert answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"records": []any{map[string]any{"fields": map[string]any{"ssn": "nope"}}}}, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}), 400)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
