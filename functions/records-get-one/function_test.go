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
	ada := env.Insert(vault, map[string]string{"name": "Ada", "ssn": "123-45-6789"})
	var res records.Record
	env.Call(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}, map[string]string{request.ExtSkyflowID: ada.SkyflowID, request.ExtQuery: "redaction=MASKED&fields=ssn"}), ReplyType, &res)
	if string(res.Fields["ssn"]) != `"XXX-XX-6789"` || res.Tokens != nil {
		t.Errorf("get one answered %+v", res)
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
