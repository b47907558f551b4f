package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	creds := env.ServiceAccount()
	var res identity.NewAPIKey
	env.Call(f, functest.Event(RequestType, map[string]any{"name": "ci", "serviceAccountID": creds.ClientID}, functest.Admin), ReplyType, &res)
	if len(res.Key) != 42 || res.Principal != "sa:"+creds.ClientID {
		t.Errorf("create answered %+v", res.APIKey)
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
