package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Login() // signing makes the first key
	var res struct{ Keys []map[string]string }
	env.Call(f, functest.Event(RequestType, nil), ReplyType, &res)
	if len(res.Keys) != 1 || res.Keys[0]["kty"] != "OKP" || res.Keys[0]["alg"] != "EdDSA" || res.Keys[0]["d"] != "" {
		t.Errorf("JWKS answered %+v", res)
	}
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400.
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}
