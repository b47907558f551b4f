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
	ada := env.Insert(vault, map[string]string{"name": "Ada", "email": "ada@example.com"})
	env.Insert(vault, map[string]string{"name": "Bob", "email": "bob@example.com"})
	var res records.GetResponse
	env.Call(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}, map[string]string{request.ExtQuery: "column_name=email&column_values=ada%40example.com&redaction=PLAIN_TEXT"}), ReplyType, &res)
	if len(res.Records) != 1 || string(res.Records[0].Fields["skyflow_id"]) != `"`+ada.SkyflowID+`"` || string(res.Records[0].Fields["name"]) != `"Ada"` {
		t.Errorf("get by email answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault, request.ExtTable: "customers"}, map[string]string{request.ExtQuery: "limit=26"}), 400)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
