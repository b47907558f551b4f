package main

import (
	"encoding/json"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	var res vaults.View
	env.Call(f, functest.Event(RequestType, json.RawMessage(functest.Schema), functest.Admin), ReplyType, &res)
	if len(res.ID) != 32 || res.SchemaVersion != 1 || len(res.Tables) != 1 {
		t.Errorf("create answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, json.RawMessage(functest.Schema), functest.Owner), 403)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
