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
	ada := env.Insert(vault, map[string]string{"ssn": "123-45-6789"})
	var res records.TokenizeResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"tokenizationParameters": []any{map[string]any{"value": "123-45-6789", "columnGroup": "customers.ssn"}}}, functest.Owner, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if len(res.Records) != 1 || res.Records[0].Token != ada.Tokens["ssn"] {
		t.Errorf("tokenize answered %+v, want %s", res, ada.Tokens["ssn"])
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
