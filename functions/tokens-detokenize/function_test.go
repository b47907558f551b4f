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
	var res records.DetokenizeResponse
	env.Call(f, functest.Event(RequestType, map[string]any{"detokenizationParameters": []any{map[string]any{"token": ada.Tokens["ssn"], "redaction": "PLAIN_TEXT"}, map[string]any{"token": "nope"}}, "continueOnError": true}, functest.Owner, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if len(res.Records) != 2 || res.Records[0].Value != "123-45-6789" || res.Records[0].ValueType != "STRING" || res.Records[1].Error == nil || res.Records[1].ValueType != "NONE" {
		t.Errorf("detokenize answered %+v", res)
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
