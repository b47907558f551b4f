package main

import (
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	var res credentials.Credentials
	env.Call(f, functest.Event(RequestType, map[string]any{"name": "billing", "roles": []string{"owner"}}, functest.Admin), ReplyType, &res)
	if res.ClientID == "" || res.TokenURI != functest.TokenURI || !strings.HasPrefix(res.PrivateKey, "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("create answered %+v", res.ClientID)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"name": "billing"}, functest.Owner), 403)
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
