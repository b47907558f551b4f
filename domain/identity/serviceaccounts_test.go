package identity_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

func (f *fixture) serviceAccount(roles ...string) credentials.Credentials {
	f.t.Helper()
	c, err := f.service("serviceaccounts-create").CreateServiceAccount(f.ctx, admin, identity.ServiceAccountRequest{Name: "billing", Roles: roles})
	if err != nil {
		f.t.Fatalf("create service account: %v", err)
	}
	return *c
}

func (f *fixture) exchange(assertion, scope string) (*identity.TokenResponse, error) {
	return f.service("auth-sa-token").ExchangeToken(f.ctx, identity.TokenRequest{GrantType: identity.GrantType, Assertion: assertion, Scope: scope})
}

// TestServiceAccountFlow follows a Skyflow SDK: a credentials.json from
// the API, an assertion signed with it, exchanged for an access token
// with the account's roles and ctx.
func TestServiceAccountFlow(t *testing.T) {
	f := setup(t)
	if _, err := f.service("serviceaccounts-create").CreateServiceAccount(f.ctx, request.Principal{ID: "user:x", Roles: []string{"owner"}}, identity.ServiceAccountRequest{Name: "x"}); status(err) != 403 {
		t.Errorf("a non-administrator created a service account: %v", err)
	}
	creds := f.serviceAccount("owner", "reader")
	raw, _ := json.Marshal(creds)
	for _, field := range []string{`"clientID"`, `"clientName":"billing"`, `"keyID"`, `"tokenURI":"` + tokenURI + `"`, `"privateKey":"-----BEGIN PRIVATE KEY-----`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("credentials.json %s lacks %s", raw, field)
		}
	}
	now := time.Now()
	assertion, err := credentials.SignAssertion(creds, time.Hour, map[string]any{"tenant": "acme"}, now)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.exchange(assertion, "")
	if err != nil || res.TokenType != "Bearer" {
		t.Fatalf("exchange: %+v, %v", res, err)
	}
	claims, err := f.backend.Keys.Verify(f.ctx, res.AccessToken)
	if err != nil || claims.Subject != "sa:"+creds.ClientID || strings.Join(claims.Roles, ",") != "owner,reader" {
		t.Fatalf("access token claims %+v, %v", claims, err)
	}
	if ctx, _ := claims.Ctx.(map[string]any); ctx["tenant"] != "acme" {
		t.Errorf("ctx claim %v, want it carried through", claims.Ctx)
	}
	if _, err := f.exchange(assertion, ""); status(err) != 401 {
		t.Errorf("a replayed assertion: %v, want 401", err)
	}
	// Narrowed by scope.
	a2, _ := credentials.SignAssertion(creds, time.Minute, nil, now)
	res, err = f.exchange(a2, "role:reader")
	if c, _ := f.backend.Keys.Verify(f.ctx, res.AccessToken); err != nil || strings.Join(c.Roles, ",") != "reader" {
		t.Errorf("scope role:reader gave %v, %v", c, err)
	}
	a3, _ := credentials.SignAssertion(creds, time.Minute, nil, now)
	if _, err := f.exchange(a3, "role:admin"); status(err) != 403 {
		t.Errorf("scope naming a role not held: %v, want 403", err)
	}

	// Refusals.
	other := f.serviceAccount()
	expired, _ := credentials.SignAssertion(creds, time.Minute, nil, now.Add(-time.Hour))
	wrongAud := creds
	wrongAud.TokenURI = "https://elsewhere.example/v1/auth/sa/oauth/token"
	badAud, _ := credentials.SignAssertion(wrongAud, time.Minute, nil, now)
	wrongKey := other
	wrongKey.ClientID, wrongKey.KeyID = creds.ClientID, creds.KeyID // signed with another account's private key
	badKey, _ := credentials.SignAssertion(wrongKey, time.Minute, nil, now)
	for name, a := range map[string]string{"expired": expired, "wrong aud": badAud, "wrong key": badKey, "garbage": "not.a.jwt"} {
		if _, err := f.exchange(a, ""); status(err) != 401 {
			t.Errorf("%s assertion: %v, want 401", name, err)
		}
	}
	if _, err := f.service("auth-sa-token").ExchangeToken(f.ctx, identity.TokenRequest{GrantType: "password", Assertion: a2}); status(err) != 400 {
		t.Errorf("wrong grant_type: %v, want 400", err)
	}

	// Revoked: no more tokens.
	if _, err := f.service("serviceaccounts-revoke").RevokeServiceAccount(f.ctx, admin, creds.ClientID); err != nil {
		t.Fatal(err)
	}
	a4, _ := credentials.SignAssertion(creds, time.Minute, nil, now)
	if _, err := f.exchange(a4, ""); status(err) != 401 {
		t.Errorf("an assertion of a revoked account: %v, want 401", err)
	}
	list, err := f.service("serviceaccounts-list").ListServiceAccounts(f.ctx, admin)
	if err != nil || len(list.ServiceAccounts) != 2 || list.ServiceAccounts[0].RevokedAt == nil {
		t.Errorf("list: %+v, %v", list, err)
	}
	f.checkEvents(creds.PrivateKey[40:80])
}

func TestAPIKeys(t *testing.T) {
	f := setup(t)
	creds := f.serviceAccount("reader")
	k, err := f.service("apikeys-create").CreateAPIKey(f.ctx, admin, identity.APIKeyRequest{Name: "ci", ServiceAccountID: creds.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Key) != 42 || !strings.HasPrefix(k.Key, "sky-") || !strings.HasPrefix(k.Key, k.Prefix) {
		t.Errorf("key %q (prefix %q)", k.Key, k.Prefix)
	}
	p, err := f.backend.Authenticate(f.ctx, k.Key)
	if err != nil || p.ID != "sa:"+creds.ClientID || strings.Join(p.Roles, ",") != "reader" {
		t.Fatalf("authenticate: %+v, %v", p, err)
	}
	var stored int
	f.backend.Pool.QueryRow(f.ctx, `SELECT count(*) FROM api_keys WHERE position($1 in encode(key_hash, 'escape')) > 0 OR prefix = $1`, k.Key).Scan(&stored)
	if stored != 0 {
		t.Error("the API key is stored in the clear")
	}
	list, err := f.service("apikeys-list").ListAPIKeys(f.ctx, admin)
	raw, _ := json.Marshal(list)
	if err != nil || len(list.APIKeys) != 1 || strings.Contains(string(raw), k.Key) {
		t.Errorf("list: %s, %v", raw, err)
	}
	if _, err := f.service("apikeys-revoke").RevokeAPIKey(f.ctx, admin, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.backend.Authenticate(f.ctx, k.Key); status(err) != 401 {
		t.Errorf("a revoked key: %v, want 401", err)
	}
	for _, bad := range []string{"", "sky-", k.Key[:41], "sky-" + strings.Repeat("!", 38)} {
		if _, err := f.backend.Authenticate(f.ctx, bad); status(err) != 401 {
			t.Errorf("key %q: %v, want 401", bad, err)
		}
	}
	// A second key dies with its service account.
	k2, _ := f.service("apikeys-create").CreateAPIKey(f.ctx, admin, identity.APIKeyRequest{Name: "ci2", ServiceAccountID: creds.ClientID})
	f.service("serviceaccounts-revoke").RevokeServiceAccount(f.ctx, admin, creds.ClientID)
	if _, err := f.backend.Authenticate(f.ctx, k2.Key); status(err) != 401 {
		t.Errorf("a key of a revoked account: %v, want 401", err)
	}
	if n := len(f.sink.OfType(identity.APIKeyRevokedType)); n != 2 {
		t.Errorf("%d apikey.revoked events, want 2", n)
	}
	f.checkEvents(k.Key, k2.Key)
}

func TestRolesAndSigningKeyRotation(t *testing.T) {
	f := setup(t)
	u := f.register("cy@example.com")
	if _, err := f.service("users-roles-set").SetRoles(f.ctx, admin, "user:"+u.ID, identity.RolesRequest{Roles: []string{"support", "owner"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.service("users-roles-set").SetRoles(f.ctx, request.Principal{ID: "user:" + u.ID, Roles: []string{"owner"}}, "user:"+u.ID, identity.RolesRequest{Roles: []string{"admin"}}); status(err) != 403 {
		t.Errorf("a user gave itself admin: %v", err)
	}
	if _, err := f.service("users-roles-set").SetRoles(f.ctx, admin, "user:00000000-0000-4000-8000-00000000abcd", identity.RolesRequest{Roles: []string{"x"}}); status(err) != 404 {
		t.Errorf("roles for nobody: %v, want 404", err)
	}
	login := func() string {
		s, err := f.service("users-login").Login(f.ctx, identity.LoginRequest{Email: "cy@example.com", Password: password}, "203.0.113.5")
		if err != nil {
			t.Fatal(err)
		}
		return s.AccessToken
	}
	before := login()
	c1, err := f.backend.Keys.Verify(f.ctx, before)
	if err != nil || strings.Join(c1.Roles, ",") != "owner,support" {
		t.Fatalf("roles in the token: %+v, %v", c1, err)
	}
	kid, err := f.backend.Keys.Rotate(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := login()
	if _, err := f.backend.Keys.Verify(f.ctx, before); err != nil {
		t.Errorf("a token signed before the rotation: %v", err)
	}
	if !strings.Contains(header(after), kid) || strings.Contains(header(before), kid) {
		t.Errorf("kid: before %s, after %s, new kid %s", header(before), header(after), kid)
	}
	jwks, err := f.backend.Keys.JWKS(f.ctx)
	if err != nil || strings.Count(string(jwks), `"kid"`) != 2 {
		t.Errorf("JWKS after a rotation: %s, %v", jwks, err)
	}
}

// header is a JWT's decoded header.
func header(token string) string {
	h, _, _ := strings.Cut(token, ".")
	b, _ := base64URL(h)
	return string(b)
}
