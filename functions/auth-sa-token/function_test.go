package main

import (
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func TestHandle(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	creds := env.ServiceAccount()
	assertion, err := credentials.SignAssertion(creds, time.Minute, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"grant_type": identity.GrantType, "assertion": assertion}
	var res identity.TokenResponse
	env.Call(f, functest.Event(RequestType, body), ReplyType, &res)
	if res.TokenType != "Bearer" || strings.Count(res.AccessToken, ".") != 2 {
		t.Errorf("token exchange answered %+v", res)
	}
	env.Refuses(f, functest.Event(RequestType, body), 401) // replayed
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400.
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}
