package tests

// End-to-end tests of the user service through real HTTP on the local
// platform, called exactly as the gateway will call it (a binary-mode
// CloudEvent per request, runtime/request's extensions): the user journey
// (register, verify, log in, refresh with reuse detection, log out), the
// service-account token exchange exactly as a Skyflow SDK does it and the
// use of its token on a vault, API keys, and the login lock-out. Every
// reply is checked against the event catalog and every error against the
// envelope (vaultClient.call); no body and no outbox event may carry a
// password, and no outbox event a token, key or email address.

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// idOps are the user service's operations, as the gateway will route them
// (RequestType in each function's function.go).
var idOps = struct {
	register, verifyEmail, login, refresh, logout, profileGet apiOp
	jwks, tokenExchange                                       apiOp
	saCreate, saList, saRevoke                                apiOp
	keyCreate, keyList, keyRevoke                             apiOp
}{
	register:      apiOp{"users-register", "com.skyflow.user.register"},
	verifyEmail:   apiOp{"users-verify-email", "com.skyflow.user.email.verify"},
	login:         apiOp{"users-login", "com.skyflow.user.login"},
	refresh:       apiOp{"users-refresh", "com.skyflow.user.session.refresh"},
	logout:        apiOp{"users-logout", "com.skyflow.user.logout"},
	profileGet:    apiOp{"users-profile-get", "com.skyflow.user.profile.get"},
	jwks:          apiOp{"auth-jwks", "com.skyflow.auth.jwks.get"},
	tokenExchange: apiOp{"auth-sa-token", "com.skyflow.auth.token.exchange"},
	saCreate:      apiOp{"serviceaccounts-create", "com.skyflow.serviceaccount.create"},
	saList:        apiOp{"serviceaccounts-list", "com.skyflow.serviceaccount.list"},
	saRevoke:      apiOp{"serviceaccounts-revoke", "com.skyflow.serviceaccount.revoke"},
	keyCreate:     apiOp{"apikeys-create", "com.skyflow.apikey.create"},
	keyList:       apiOp{"apikeys-list", "com.skyflow.apikey.list"},
	keyRevoke:     apiOp{"apikeys-revoke", "com.skyflow.apikey.revoke"},
}

// The issuer and audience of access tokens: identity.Connect's defaults,
// which the platform's functions run with.
const (
	idIssuer   = "skyflow"
	idAudience = "skyflow-api"
)

// identityAPI calls the user service's functions (through vaultClient,
// which checks every reply and envelope), keeps every body answered, and
// collects the secrets the test sends or is given, which no error body and
// no outbox event may carry.
type identityAPI struct {
	*vaultClient
	backend *identity.Backend // in-process, on the platform's database and Redis
	admin   ext

	mu        sync.Mutex
	bodies    []string // every response and error body
	passwords []string // every password sent: in no body, no event
	secrets   []string // tokens, keys, assertions, emails: in no error body, no event
}

// password notes a password the test sends.
func (a *identityAPI) password(pw string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.passwords = append(a.passwords, pw)
	return pw
}

// secret notes secrets the test sends or is given.
func (a *identityAPI) secret(s ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range s {
		if v != "" {
			a.secrets = append(a.secrets, v)
		}
	}
}

// do calls op and keeps the body answered.
func (a *identityAPI) do(t *testing.T, op apiOp, x ext, body any) (int, json.RawMessage) {
	t.Helper()
	status, b, _ := a.call(t, op, x, body)
	a.mu.Lock()
	a.bodies = append(a.bodies, string(b))
	a.mu.Unlock()
	return status, b
}

// want calls op and fails the test unless it answers status.
func (a *identityAPI) want(t *testing.T, what string, status int, op apiOp, x ext, body any) json.RawMessage {
	t.Helper()
	got, b := a.do(t, op, x, body)
	if got != status {
		t.Fatalf("%s: %s answered %d, want %d: %s", what, op.fn, got, status, b)
	}
	return b
}

// verifyToken fetches the key set auth-jwks serves and verifies token with it, as
// the gateway will.
func (a *identityAPI) verifyToken(t *testing.T, token string) *signing.Claims {
	t.Helper()
	set := a.want(t, "JWKS", 200, idOps.jwks, nil, nil)
	c, err := signing.VerifyWithJWKS(set, token, idIssuer, idAudience, time.Now())
	if err != nil {
		t.Fatalf("the access token does not verify against the JWKS: %v\n%s", err, set)
	}
	return c
}

// outbox is every event of type typ in the platform's outbox, oldest first.
func (a *identityAPI) outbox(t *testing.T, typ string) []event.Event {
	t.Helper()
	q := `SELECT event FROM outbox ORDER BY created_at, id`
	args := []any{}
	if typ != "" {
		q = `SELECT event FROM outbox WHERE type = $1 ORDER BY created_at, id`
		args = append(args, typ)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := a.backend.Pool.Query(ctx, q, args...)
	if err != nil {
		t.Fatalf("reading the outbox: %v", err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("an outbox row is not a structured-mode event: %v", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// idData decodes an event's data.
func idData(t *testing.T, e event.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data(), &m); err != nil {
		t.Fatalf("%s data: %v", e.Type(), err)
	}
	return m
}

// jsonKeys is the sorted member names of a JSON object.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// platformTokenURI is the token URI the platform gives its functions: the
// gateway's HTTPS address. The service-account subtest checks it against
// credentials.json.
func platformTokenURI(p *testPlatform) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.GatewayTLSURL(), "https://"))
	return "https://localhost:" + port + "/v1/auth/sa/oauth/token"
}

// idAPIError reports whether err is an *apierr.Error with the given status.
func idAPIError(err error, status int) bool {
	var ae *apierr.Error
	return errors.As(err, &ae) && ae.HTTPCode == status
}

func TestIdentityAPI(t *testing.T) {
	// The in-process backend reads the key-encryption key the functions use.
	if os.Getenv("VAULT_ADDR") != "" {
		t.Skip("VAULT_ADDR is set: the platform's key-encryption key is Vault's, not .dev/master.key")
	}
	p := startPlatform(t, options{})
	tokenURI := platformTokenURI(p)

	// The backend as the functions build it, for what has no HTTP route
	// yet (the verification email is a later issue) and what the gateway
	// will ask (Denied, Authenticate).
	keyFile := filepath.Join(p.cfg.DevDir, "master.key")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := identity.Connect(ctx, map[string]string{
		"DATABASE_URL":            p.DatabaseURL(),
		"REDIS_URL":               p.cfg.RedisURL,
		"K_SINK":                  p.SinkURL(),
		"SKYFLOW_MASTER_KEY_FILE": keyFile,
		"SKYFLOW_TOKEN_URI":       tokenURI,
		"REDIS_PREFIX":            p.cfg.RedisPrefix, // the functions' keys (startPlatform)
	})
	if err != nil {
		t.Fatalf("identity.Connect: %v", err)
	}
	t.Cleanup(func() { b.Pool.Close(); b.Redis.Close() })
	svc := identity.NewService(b, "/skyflow/functions/users-register")

	a := &identityAPI{
		vaultClient: newVaultClient(t, p),
		backend:     b,
		admin:       ext{"principal": "user:" + uuid.NewString(), "roles": "admin"},
	}

	var (
		creds    credentials.Credentials
		saClaims *signing.Claims
	)

	// The lock-out waits about 12 s (the default policy's delays), so it
	// runs beside the other flows.
	t.Run("concurrently", func(t *testing.T) {
		t.Run("lockout", func(t *testing.T) {
			t.Parallel()
			identityLockout(t, a)
		})
		t.Run("flows", func(t *testing.T) {
			t.Parallel()
			t.Run("user journey", func(t *testing.T) {
				identityJourney(t, a, svc)
			})
			t.Run("service account", func(t *testing.T) {
				creds, saClaims = identityServiceAccount(t, a, tokenURI)
			})
			if saClaims == nil {
				t.Fatal("no service account to make API keys for")
			}
			t.Run("api keys", func(t *testing.T) {
				identityAPIKeys(t, a, creds.ClientID)
			})
		})
	})

	t.Run("bodies and outbox carry no secret", func(t *testing.T) {
		a.mu.Lock()
		passwords, secrets, bodies := slices.Clone(a.passwords), slices.Clone(a.secrets), slices.Clone(a.bodies)
		a.mu.Unlock()
		if creds.PrivateKey != "" {
			// The key's base64 body, whichever way it might be re-wrapped.
			lines := strings.Split(strings.TrimSpace(creds.PrivateKey), "\n")
			secrets = append(secrets, strings.Join(lines[1:len(lines)-1], ""), lines[1])
		}
		if len(passwords) == 0 || len(bodies) == 0 {
			t.Fatal("no passwords sent or no bodies answered")
		}
		for _, body := range bodies {
			for _, pw := range passwords {
				if strings.Contains(body, pw) {
					t.Errorf("a body carries a password sent: %s", body)
				}
			}
		}
		for _, body := range a.errorBodies() {
			for _, s := range secrets {
				if s != "" && strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
					t.Errorf("an error body carries a secret (%.12s…): %s", s, body)
				}
			}
		}
		events := a.outbox(t, "")
		types := map[string]int{}
		for _, e := range events {
			types[e.Type()]++
			if err := catalog.Validate(e); err != nil {
				t.Errorf("outbox event %s does not match the catalog: %v", e.Type(), err)
			}
			raw, _ := json.Marshal(e)
			for _, s := range append(passwords, secrets...) {
				if s != "" && strings.Contains(strings.ToLower(string(raw)), strings.ToLower(s)) {
					t.Errorf("outbox event %s carries a secret (%.12s…): %s", e.Type(), s, raw)
				}
			}
		}
		for _, typ := range []string{identity.UserRegisteredType, identity.UserEmailVerifiedType, identity.UserSessionRevokedType,
			identity.UserLoginLockedType, identity.ServiceAccountCreatedType, identity.APIKeyCreatedType, identity.APIKeyRevokedType} {
			if types[typ] == 0 {
				t.Errorf("no %s event in the outbox (have %v)", typ, types)
			}
		}
	})
}

// identityJourney: register, verify, log in, refresh, reuse of a spent
// refresh token, log out.
func identityJourney(t *testing.T, a *identityAPI, svc *identity.Service) {
	email := "ada." + uuid.NewString()[:8] + "@example.com"
	pw := a.password("Lovelace-analytical-engine-1843")
	a.secret(email)

	// Register: the answer is the new, unverified account; the email is
	// kept lower-cased.
	b := a.want(t, "register", 200, idOps.register, nil,
		identity.RegisterRequest{Email: "  " + strings.ToUpper(email[:1]) + email[1:], Password: pw, DisplayName: "Ada"})
	u := decode[identity.User](t, b)
	if _, err := uuid.Parse(u.ID); err != nil || u.Email != email || u.EmailVerified || u.DisplayName != "Ada" ||
		u.Roles == nil || len(u.Roles) != 0 || u.VerifiedAt != nil {
		t.Fatalf("registered %s", b)
	}
	principal := identity.UserPrincipal(uuid.MustParse(u.ID))

	// The registration is announced, with the user's id only.
	var registered []event.Event
	for _, e := range a.outbox(t, identity.UserRegisteredType) {
		if e.Subject() == principal {
			registered = append(registered, e)
		}
	}
	if len(registered) != 1 {
		t.Fatalf("%d %s events for %s in the outbox, want 1", len(registered), identity.UserRegisteredType, principal)
	}
	if d := idData(t, registered[0]); len(d) != 1 || d["user_id"] != u.ID {
		t.Errorf("%s data %v", identity.UserRegisteredType, d)
	}

	// Refusals: a second account for the address, a short password,
	// unknown fields (a misspelt option), and an anonymous log out.
	a.want(t, "duplicate registration", 409, idOps.register, nil, identity.RegisterRequest{Email: email, Password: a.password("another-Long-password-77"), DisplayName: "Eve"})
	a.want(t, "short password", 400, idOps.register, nil, identity.RegisterRequest{Email: "eve." + uuid.NewString()[:8] + "@example.com", Password: a.password("Sh0rt!"), DisplayName: "Eve"})
	a.want(t, "unknown field", 400, idOps.register, nil, map[string]string{"email": email, "password": pw, "displayName": "Ada", "admin": "true"})

	// Logging in before verifying: the password is right, but no session.
	addr := "203.0.113.10"
	login := ext{"clientaddr": addr}
	a.want(t, "log in before verifying", 403, idOps.login, login, identity.LoginRequest{Email: email, Password: pw})

	// Verify the email with the token the notification service will send.
	tok, err := svc.IssueVerification(context.Background(), u.ID)
	if err != nil {
		t.Fatalf("IssueVerification: %v", err)
	}
	a.secret(tok)
	a.want(t, "verify with a wrong token", 400, idOps.verifyEmail, nil, identity.VerifyEmailRequest{Token: tok[:len(tok)-2] + "xx"})
	b = a.want(t, "verify", 200, idOps.verifyEmail, nil, identity.VerifyEmailRequest{Token: tok})
	if v := decode[identity.User](t, b); !v.EmailVerified || v.VerifiedAt == nil || v.ID != u.ID {
		t.Fatalf("verified %s", b)
	}
	a.want(t, "verify twice", 400, idOps.verifyEmail, nil, identity.VerifyEmailRequest{Token: tok})

	// Log in: a session whose access token verifies against the JWKS.
	a.want(t, "wrong password", 401, idOps.login, login, identity.LoginRequest{Email: email, Password: a.password("not-Lovelace-at-all-1843")})
	s1 := decode[identity.Session](t, a.want(t, "log in", 200, idOps.login, login, identity.LoginRequest{Email: email, Password: pw}))
	a.secret(s1.AccessToken, s1.RefreshToken)
	if s1.TokenType != "Bearer" || s1.ExpiresIn != 900 || s1.RefreshToken == "" {
		t.Fatalf("session %+v", s1)
	}
	c1 := a.verifyToken(t, s1.AccessToken)
	if c1.Subject != principal || c1.Kind != signing.KindUser || len(c1.Roles) != 0 || c1.ID == "" ||
		c1.ExpiresAt == nil || time.Until(c1.ExpiresAt.Time) > 15*time.Minute+time.Minute {
		t.Fatalf("access token claims %+v", c1)
	}
	me := ext{"principal": c1.Subject, "roles": strings.Join(c1.Roles, " ")}
	if p := decode[identity.User](t, a.want(t, "profile", 200, idOps.profileGet, me, nil)); p.ID != u.ID || !p.EmailVerified {
		t.Errorf("profile %+v", p)
	}

	// Refresh: a new session of the same family.
	s2 := decode[identity.Session](t, a.want(t, "refresh", 200, idOps.refresh, nil, identity.RefreshRequest{RefreshToken: s1.RefreshToken}))
	a.secret(s2.AccessToken, s2.RefreshToken)
	if s2.RefreshToken == s1.RefreshToken || s2.AccessToken == s1.AccessToken {
		t.Fatal("the refresh did not rotate the tokens")
	}
	c2 := a.verifyToken(t, s2.AccessToken)
	if c2.Subject != principal || c2.ID == c1.ID {
		t.Fatalf("refreshed claims %+v", c2)
	}

	// s1's refresh token again: stolen. 401, and the whole family is
	// dead: s2's refresh token too, and its access token denied.
	a.want(t, "reuse of a spent refresh token", 401, idOps.refresh, nil, identity.RefreshRequest{RefreshToken: s1.RefreshToken})
	a.want(t, "the newer refresh token after a reuse", 401, idOps.refresh, nil, identity.RefreshRequest{RefreshToken: s2.RefreshToken})
	if denied, err := a.backend.Denied(context.Background(), c2.ID); err != nil || !denied {
		t.Errorf("s2's access token after the reuse: denied %v, %v", denied, err)
	}
	var reuse int
	for _, e := range a.outbox(t, identity.UserSessionRevokedType) {
		if e.Subject() == principal && idData(t, e)["reason"] == "refresh_token_reuse" {
			reuse++
		}
	}
	if reuse != 1 {
		t.Errorf("%d session.revoked events for the reuse, want 1", reuse)
	}

	// A new session, then log out as the token's subject.
	s3 := decode[identity.Session](t, a.want(t, "log in again", 200, idOps.login, login, identity.LoginRequest{Email: email, Password: pw}))
	a.secret(s3.AccessToken, s3.RefreshToken)
	c3 := a.verifyToken(t, s3.AccessToken)
	if denied, err := a.backend.Denied(context.Background(), c3.ID); err != nil || denied {
		t.Fatalf("a fresh access token: denied %v, %v", denied, err)
	}
	a.want(t, "anonymous log out", 401, idOps.logout, nil, identity.RefreshRequest{RefreshToken: s3.RefreshToken})
	a.want(t, "log out of someone else's session", 401, idOps.logout,
		ext{"principal": "user:" + uuid.NewString()}, identity.RefreshRequest{RefreshToken: s3.RefreshToken})
	me3 := ext{"principal": c3.Subject, "roles": strings.Join(c3.Roles, " ")}
	if b := a.want(t, "log out", 200, idOps.logout, me3, identity.RefreshRequest{RefreshToken: s3.RefreshToken}); string(b) != `{"loggedOut":true}` {
		t.Errorf("log out answered %s", b)
	}
	if denied, err := a.backend.Denied(context.Background(), c3.ID); err != nil || !denied {
		t.Errorf("the access token after log out: denied %v, %v", denied, err)
	}
	a.want(t, "refresh after log out", 401, idOps.refresh, nil, identity.RefreshRequest{RefreshToken: s3.RefreshToken})
	var logout int
	for _, e := range a.outbox(t, identity.UserSessionRevokedType) {
		if e.Subject() == principal && idData(t, e)["reason"] == "logout" {
			logout++
		}
	}
	if logout != 1 {
		t.Errorf("%d session.revoked events for the log out, want 1", logout)
	}
}

// identityServiceAccount: an admin creates a service account; its
// credentials.json, written to a file and read back as an SDK does, signs
// an assertion that auth-sa-token exchanges for an access token, which
// writes to and reads from a vault. Replayed, expired, wrong-audience and
// wrong-key assertions are refused.
func identityServiceAccount(t *testing.T, a *identityAPI, tokenURI string) (credentials.Credentials, *signing.Claims) {
	const role = "ingest"
	req := identity.ServiceAccountRequest{Name: "ingest bot", Roles: []string{role}}
	a.want(t, "create a service account as a non-admin", 403, idOps.saCreate, ext{"principal": "user:" + uuid.NewString(), "roles": "ingest"}, req)
	a.want(t, "create a service account anonymously", 401, idOps.saCreate, nil, req)
	b := a.want(t, "create a service account", 200, idOps.saCreate, a.admin, req)
	if keys := strings.Join(jsonKeys(t, b), ","); keys != "clientID,clientName,keyID,privateKey,tokenURI" {
		t.Errorf("credentials.json members %s, want exactly clientID, clientName, keyID, tokenURI, privateKey", keys)
	}

	// The SDK's side: the file, read back.
	file := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var creds credentials.Credentials
	if err := json.Unmarshal(raw, &creds); err != nil {
		t.Fatalf("credentials.json: %v", err)
	}
	a.secret(creds.PrivateKey)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(creds.ClientID) || creds.KeyID == "" || creds.ClientName != req.Name ||
		creds.TokenURI != tokenURI || !strings.HasPrefix(creds.PrivateKey, "-----BEGIN PRIVATE KEY-----\n") {
		t.Fatalf("credentials.json %+v (the private key not shown), want token URI %s", credentials.Credentials{
			ClientID: creds.ClientID, ClientName: creds.ClientName, KeyID: creds.KeyID, TokenURI: creds.TokenURI}, tokenURI)
	}
	list := a.want(t, "list service accounts", 200, idOps.saList, a.admin, nil)
	if strings.Contains(string(list), "PRIVATE KEY") || !strings.Contains(string(list), creds.ClientID) {
		t.Errorf("service account list %s", list)
	}

	exchange := func(what string, status int, assertion, scope string) json.RawMessage {
		t.Helper()
		a.secret(assertion)
		return a.want(t, what, status, idOps.tokenExchange, nil, identity.TokenRequest{GrantType: identity.GrantType, Assertion: assertion, Scope: scope})
	}
	sign := func(c credentials.Credentials, ttl time.Duration) string {
		t.Helper()
		s, err := credentials.SignAssertion(c, ttl, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The exchange, exactly as the SDKs send and read it.
	assertion := sign(creds, time.Hour)
	b = exchange("token exchange", 200, assertion, "")
	if keys := strings.Join(jsonKeys(t, b), ","); keys != "accessToken,tokenType" {
		t.Errorf("token answer members %s, want accessToken and tokenType", keys)
	}
	res := decode[identity.TokenResponse](t, b)
	a.secret(res.AccessToken)
	if res.TokenType != "Bearer" {
		t.Errorf("tokenType %q", res.TokenType)
	}
	claims := a.verifyToken(t, res.AccessToken)
	if claims.Subject != "sa:"+creds.ClientID || !slices.Equal(claims.Roles, []string{role}) || claims.Kind != signing.KindServiceAccount {
		t.Fatalf("service account token claims %+v", claims)
	}

	// The token's principal and roles on a vault whose policy grants the
	// account's role insert and read.
	vaultBody := json.RawMessage(`{"name": "sa vault", "tables": [{"name": "events", "columns": [{"name": "note", "data_type": "string"}]}],
		"policy": {"roles": {"` + role + `": {"tables": {"events": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}}}}}`)
	vaultID := decode[struct{ ID string }](t, a.want(t, "create a vault", 200, opVaultCreate, a.admin, vaultBody)).ID
	as := ext{"principal": claims.Subject, "roles": strings.Join(claims.Roles, " "), "vaultid": vaultID, "table": "events"}
	ins := decode[insertAnswer](t, a.want(t, "insert as the service account", 200, opInsert, as,
		map[string]any{"records": []any{map[string]any{"fields": map[string]any{"note": "shipped"}}}}))
	if len(ins.Records) != 1 || ins.Records[0].SkyflowID == "" {
		t.Fatalf("insert answered %+v", ins)
	}
	got := decode[struct {
		Fields map[string]any `json:"fields"`
	}](t, a.want(t, "read as the service account", 200, opGetOne, as.with("skyflowid", ins.Records[0].SkyflowID), nil))
	if got.Fields["note"] != "shipped" {
		t.Errorf("read back %v", got.Fields)
	}
	a.want(t, "insert with a role the policy does not name", 404, opInsert, as.with("roles", "other"),
		map[string]any{"records": []any{map[string]any{"fields": map[string]any{"note": "x"}}}})

	// Scope narrows to roles held, and only those.
	b = exchange("token exchange with a scope", 200, sign(creds, time.Hour), "role:"+role)
	a.secret(decode[identity.TokenResponse](t, b).AccessToken)
	exchange("token exchange for a role not held", 403, sign(creds, time.Hour), "role:admin")

	// Refusals, each a 401 envelope.
	exchange("replayed assertion", 401, assertion, "")
	exchange("expired assertion", 401, sign(creds, -time.Minute), "")
	wrongAud := creds
	wrongAud.TokenURI = "https://skyflow.example/v1/auth/sa/oauth/token"
	exchange("assertion for another token URI", 401, sign(wrongAud, time.Hour), "")
	other, _, err := credentials.NewKeyPair(creds.ClientID, creds.ClientName, creds.TokenURI)
	if err != nil {
		t.Fatal(err)
	}
	other.KeyID = creds.KeyID // the right key id, signed with another key
	a.secret(other.PrivateKey)
	exchange("assertion signed with another key", 401, sign(other, time.Hour), "")
	unused := sign(creds, time.Hour)
	a.secret(unused)
	a.want(t, "another grant type", 400, idOps.tokenExchange, nil, identity.TokenRequest{GrantType: "client_credentials", Assertion: unused})

	// The account was announced with its id and roles.
	var created int
	for _, e := range a.outbox(t, identity.ServiceAccountCreatedType) {
		if e.Subject() == "sa:"+creds.ClientID {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d serviceaccount.created events for the account, want 1", created)
	}
	return creds, claims
}

// identityAPIKeys: an API key for the service account, shown once, listed
// by prefix only, refused at once when revoked.
func identityAPIKeys(t *testing.T, a *identityAPI, clientID string) {
	req := identity.APIKeyRequest{Name: "ci key", ServiceAccountID: clientID}
	a.want(t, "create an API key as a non-admin", 403, idOps.keyCreate, ext{"principal": "sa:" + clientID, "roles": "ingest"}, req)
	a.want(t, "create an API key for no account", 404, idOps.keyCreate, a.admin, identity.APIKeyRequest{Name: "x", ServiceAccountID: strings.Repeat("0", 32)})
	b := a.want(t, "create an API key", 200, idOps.keyCreate, a.admin, req)
	k := decode[identity.NewAPIKey](t, b)
	a.secret(k.Key)
	if len(k.Key) != 42 || !strings.HasPrefix(k.Key, "sky-") || !credentials.LooksLikeAPIKey(k.Key) ||
		k.Prefix != k.Key[:8] || k.Principal != "sa:"+clientID || k.Name != req.Name {
		t.Fatalf("new API key %+v (key %d characters)", k.APIKey, len(k.Key))
	}
	if _, err := uuid.Parse(k.ID); err != nil {
		t.Fatalf("API key id %q", k.ID)
	}

	// The gateway's view: the key acts as the service account, with its roles.
	ctx := context.Background()
	if pr, err := a.backend.Authenticate(ctx, k.Key); err != nil || pr.ID != "sa:"+clientID || !slices.Equal(pr.Roles, []string{"ingest"}) {
		t.Fatalf("Authenticate: %+v, %v", pr, err)
	}

	// Listed by prefix: the key itself is nowhere in the list.
	list := a.want(t, "list API keys", 200, idOps.keyList, a.admin, nil)
	if strings.Contains(string(list), k.Key) || strings.Contains(string(list), k.Key[8:]) || strings.Contains(string(list), "apiKey\"") {
		t.Errorf("the API key list carries the key: %s", list)
	}
	keys := decode[identity.APIKeys](t, list)
	found := false
	for _, l := range keys.APIKeys {
		if l.ID == k.ID {
			found = l.Prefix == k.Prefix && l.RevokedAt == nil
		}
	}
	if !found {
		t.Errorf("the key is not listed, live, with its prefix: %s", list)
	}
	a.want(t, "list API keys as a non-admin", 403, idOps.keyList, ext{"principal": "sa:" + clientID, "roles": "ingest"}, nil)

	// Revoked: refused at once, and announced.
	if b := a.want(t, "revoke the API key", 200, idOps.keyRevoke, a.admin.with("keyid", k.ID), nil); !strings.Contains(string(b), `"revoked":true`) {
		t.Errorf("revoke answered %s", b)
	}
	if _, err := a.backend.Authenticate(ctx, k.Key); !idAPIError(err, 401) {
		t.Errorf("Authenticate after the revocation: %v, want 401", err)
	}
	a.want(t, "revoke the API key twice", 404, idOps.keyRevoke, a.admin.with("keyid", k.ID), nil)
	a.want(t, "revoke a malformed key id", 404, idOps.keyRevoke, a.admin.with("keyid", "nope"), nil)
	var revoked int
	for _, e := range a.outbox(t, identity.APIKeyRevokedType) {
		if e.Subject() == k.ID {
			if d := idData(t, e); d["key_id"] != k.ID || d["principal"] != "sa:"+clientID {
				t.Errorf("apikey.revoked data %v", d)
			}
			revoked++
		}
	}
	if revoked != 1 {
		t.Errorf("%d apikey.revoked events for the key, want 1", revoked)
	}
	list = a.want(t, "list API keys after the revocation", 200, idOps.keyList, a.admin, nil)
	for _, l := range decode[identity.APIKeys](t, list).APIKeys {
		if l.ID == k.ID && l.RevokedAt == nil {
			t.Errorf("the revoked key is listed as live: %s", list)
		}
	}
}

// identityLockout: wrong passwords for an account lock it after
// AccountPolicy.LockAfter failures (429, announced once); an unknown email
// gets the same answers in the same order; the right password is refused
// while locked. The two run at once (each waits about 12 s of slow-down),
// from different client addresses so that the address scope stays out of
// the way.
func identityLockout(t *testing.T, a *identityAPI) {
	email := "bob." + uuid.NewString()[:8] + "@example.com"
	ghost := "nobody." + uuid.NewString()[:8] + "@example.com"
	pw := a.password("Babbage-difference-engine-1822")
	wrong := a.password("Babbage-wrong-guess-1822")
	a.secret(email, ghost)
	u := decode[identity.User](t, a.want(t, "register", 200, idOps.register, nil, identity.RegisterRequest{Email: email, Password: pw, DisplayName: "Bob"}))

	attempts := identity.AccountPolicy.LockAfter + 1
	type answer struct {
		status int
		body   string
	}
	var known, unknown []answer
	try := func(out *[]answer, email, addr string) func(*testing.T) {
		return func(t *testing.T) {
			t.Parallel()
			for range attempts {
				s, b := a.do(t, idOps.login, ext{"clientaddr": addr}, identity.LoginRequest{Email: email, Password: wrong})
				*out = append(*out, answer{s, string(b)})
			}
		}
	}
	t.Run("tries", func(t *testing.T) {
		t.Run("account", try(&known, email, "198.51.100.7"))
		t.Run("unknown email", try(&unknown, ghost, "198.51.100.8"))
	})
	if len(known) != attempts || len(unknown) != attempts {
		t.FailNow()
	}

	// The lock message names the time it ends, which may differ by a second.
	until := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	for i := range attempts {
		want := 401
		if i == attempts-1 {
			want = 429
		}
		k, g := known[i], unknown[i]
		if k.status != want || g.status != want {
			t.Errorf("attempt %d: %d for the account, %d for an unknown email; want %d both\n%s\n%s", i+1, k.status, g.status, want, k.body, g.body)
		}
		if until.ReplaceAllString(k.body, "<t>") != until.ReplaceAllString(g.body, "<t>") {
			t.Errorf("attempt %d: the account and an unknown email are answered differently:\n%s\n%s", i+1, k.body, g.body)
		}
	}
	if !strings.Contains(known[attempts-1].body, `"grpc_code":8`) {
		t.Errorf("the lock answer: %s", known[len(known)-1].body)
	}
	a.want(t, "the right password while locked", 429, idOps.login, ext{"clientaddr": "198.51.100.9"}, identity.LoginRequest{Email: email, Password: pw})

	principal := identity.UserPrincipal(uuid.MustParse(u.ID))
	locked := a.outbox(t, identity.UserLoginLockedType)
	if len(locked) != 1 {
		t.Fatalf("%d %s events in the outbox, want exactly 1 (for the existing account only)", len(locked), identity.UserLoginLockedType)
	}
	if d := idData(t, locked[0]); locked[0].Subject() != principal || d["user_id"] != u.ID {
		t.Errorf("login.locked subject %q data %v", locked[0].Subject(), d)
	}
}
