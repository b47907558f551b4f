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
	a, b := env.Insert(vault, map[string]string{"name": "Ada"}), env.Insert(vault, map[string]string{"name": "Bob"})
	var res records.DeleteManyResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"skyflow_ids": []string{a.SkyflowID, b.SkyflowID}}, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}), ReplyType, &res)
	if len(res.RecordIDResponse) != 2 || res.RecordIDResponse[0] != a.SkyflowID {
		t.Errorf("delete many answered %+v", res)
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
