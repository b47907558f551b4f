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
	ada := env.Insert(vault, map[string]string{"name": "Ada"})
	var res records.UpdateResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"record": map[string]any{"fields": map[string]any{"name": "Ada King"}}, "tokenization": true}, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}, map[string]string{request.ExtSkyflowID: ada.SkyflowID}), ReplyType, &res)
	if res.SkyflowID != ada.SkyflowID || res.Tokens["name"] == "" || res.Tokens["name"] == ada.Tokens["name"] {
		t.Errorf("update answered %+v (the random token must change with the value)", res)
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
