package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/functions/gateway/cache"
	"github.com/skyflow-oss/skyflow/functions/gateway/routes"
	"github.com/skyflow-oss/skyflow/functions/gateway/upstream"
	"github.com/skyflow-oss/skyflow/local/devcert"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// upstream is a stand-in for the functions behind the gateway: a real
// function host per function name (so assertions are checked exactly as in
// a function), answering with what it received.
type upstreamFunctions struct {
	mu     sync.Mutex
	got    map[string][]event.Event // function → events received
	jwks   []byte
	jwksMu sync.Mutex
}

type echoFunction struct {
	name string
	up   *upstreamFunctions
}

func (f *echoFunction) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Gateway); err != nil {
		return nil, err
	}
	f.up.mu.Lock()
	f.up.got[f.name] = append(f.up.got[f.name], e)
	f.up.mu.Unlock()
	if e.Type() == "com.skyflow.auth.jwks.get" {
		f.up.jwksMu.Lock()
		defer f.up.jwksMu.Unlock()
		return request.Reply(e, e.Type()+".response", "/test", json.RawMessage(f.up.jwks))
	}
	var body struct {
		Fail int `json:"fail"`
	}
	json.Unmarshal(e.Data(), &body)
	if body.Fail != 0 {
		return nil, apierr.New(body.Fail, "the function refused: status %d", body.Fail)
	}
	return request.Reply(e, e.Type()+".response", "/test", map[string]any{"function": f.name, "n": len(f.up.got[f.name])})
}

func (u *upstreamFunctions) events(name string) []event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.got[name])
}

// gatewayEnv is a gateway on real HTTP, Redis and PostgreSQL, in front of
// the stand-in functions, with a token signing key the tests hold.
type gatewayEnv struct {
	*functest.Env
	url         string
	up          *upstreamFunctions
	kid         string
	key         ed25519.PrivateKey
	broker      *sender.Signer
	redisPrefix string
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func serveOn(t *testing.T, f any, s host.Settings) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { host.Serve(ctx, ln, f, s, quiet()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", s.Function)
	return ""
}

// newGateway starts a gateway; override sets more environment (name, value…).
func newGateway(t *testing.T, limits string, override ...string) *gatewayEnv {
	env := functest.New(t)
	gw, _ := sender.GenerateSigner(sender.Gateway)
	broker, _ := sender.GenerateSigner(sender.Broker)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	kid := base64.RawURLEncoding.EncodeToString([]byte("test-kid-123"))
	up := &upstreamFunctions{got: map[string][]event.Event{}, jwks: jwksOf(map[string]ed25519.PublicKey{kid: pub})}
	table, _ := routes.Load(routes.Builtin)
	var urls []string
	for _, r := range table {
		if r.Function == "" || strings.Contains(strings.Join(urls, ","), r.Function+"=") {
			continue
		}
		s := host.Settings{Function: r.Function, MaxBodyBytes: 1 << 20, EventTimeout: 10 * time.Second, DrainTimeout: time.Second, Senders: sender.NewVerifier(gw)}
		urls = append(urls, r.Function+"="+serveOn(t, &echoFunction{name: r.Function, up: up}, s))
	}
	prefix := env.Config["REDIS_PREFIX"]
	for k, v := range map[string]string{
		"DATABASE_URL": env.Config["DATABASE_URL"], "REDIS_URL": env.Config["REDIS_URL"], "REDIS_PREFIX": prefix,
		"SKYFLOW_SENDER_KEY": gw.Seed(), "SKYFLOW_FUNCTION_URLS": strings.Join(urls, ","),
		"SKYFLOW_RATE_LIMITS": limits, "SKYFLOW_CORS_ORIGINS": "https://app.example.com",
		"SKYFLOW_MAX_BODY_BYTES": "4096",
	} {
		t.Setenv(k, v)
	}
	for i := 0; i+1 < len(override); i += 2 {
		t.Setenv(override[i], override[i+1])
	}
	s := host.Settings{Function: "gateway", MaxBodyBytes: 1 << 20, EventTimeout: 10 * time.Second, DrainTimeout: time.Second, Senders: sender.NewVerifier(broker)}
	url := serveOn(t, New(), s)
	return &gatewayEnv{Env: env, url: url, up: up, kid: kid, key: key, broker: broker, redisPrefix: prefix}
}

func jwksOf(keys map[string]ed25519.PublicKey) []byte {
	var set []map[string]string
	for kid, pub := range keys {
		set = append(set, map[string]string{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub), "kid": kid, "alg": "EdDSA", "use": "sig"})
	}
	b, _ := json.Marshal(map[string]any{"keys": set})
	return b
}

// token signs claims with the test key; change edits them first.
func (g *gatewayEnv) token(change func(c *signing.Claims)) string {
	now := time.Now()
	c := signing.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "skyflow", Subject: "user:" + uuid.NewString(), Audience: jwt.ClaimStrings{"skyflow-api"},
		ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		ID: uuid.NewString()}, Roles: []string{"checkout"}, Kind: signing.KindUser}
	if change != nil {
		change(&c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = g.kid
	s, err := tok.SignedString(g.key)
	if err != nil {
		panic(err)
	}
	return s
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) envelope(t *testing.T) *apierr.Error {
	t.Helper()
	e, ok := apierr.Parse(a.body)
	if !ok {
		t.Fatalf("status %d, not the error envelope: %s", a.status, a.body)
	}
	return e
}

func (g *gatewayEnv) do(t *testing.T, method, path, credential string, body string, headers ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, g.url+path, strings.NewReader(body))
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

const limits = "data=1000/s:1000,management=1000/s:1000,auth=1000/s:1000,anonymous=1000/s:1000"

// Every forged, stale or misdirected token is refused with 401 before any
// function runs; a good one reaches the function.
func TestTokenAttacksAre401(t *testing.T) {
	g := newGateway(t, limits)
	good := g.token(nil)
	if a := g.do(t, "POST", "/v1/vaults/v1/customers", good, `{}`); a.status != 200 {
		t.Fatalf("a valid token: %d %s", a.status, a.body)
	}
	otherKey := func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k }()
	parts := strings.Split(good, ".")
	pub := g.key.Public().(ed25519.PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "skyflow", "aud": "skyflow-api", "sub": "user:x", "jti": "j", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	hs.Header["kid"] = g.kid
	hsToken, _ := hs.SignedString([]byte(pub))
	unknownKid := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": "skyflow", "aud": "skyflow-api", "sub": "user:x", "jti": "j", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	unknownKid.Header["kid"] = base64.RawURLEncoding.EncodeToString([]byte("not-our-kid!"))
	unknownToken, _ := unknownKid.SignedString(otherKey)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(mustDecode(parts[1]), `"checkout"`, `"admin"`, 1))) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+g.kid+`"}`)) + "." + parts[1] + "."
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	for name, tok := range map[string]string{
		"expired":           g.token(func(c *signing.Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }),
		"not yet valid":     g.token(func(c *signing.Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }),
		"wrong issuer":      g.token(func(c *signing.Claims) { c.Issuer = "https://evil.example.com" }),
		"wrong audience":    g.token(func(c *signing.Claims) { c.Audience = jwt.ClaimStrings{"another-api"} }),
		"tampered":          tampered,
		"alg none":          none,
		"hs256 with pubkey": hsToken,
		"unknown kid":       unknownToken,
		"garbage":           "not-a-token",
		"bad api key":       "sky-" + strings.Repeat("A", 38),
	} {
		a := g.do(t, "POST", "/v1/vaults/v1/customers", tok, `{}`)
		if a.status != 401 || a.envelope(t).HTTPCode != 401 {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
	if a := g.do(t, "POST", "/v1/vaults/v1/customers", "", `{}`); a.status != 401 {
		t.Errorf("no credential: %d", a.status)
	}
	if n := len(g.up.events("records-insert")); n != 1 {
		t.Fatalf("records-insert ran %d times; only the valid token should reach it", n)
	}

	// A revoked token (the user service's deny list in Redis) is refused at once.
	revoked := g.token(nil)
	c, _ := signing.VerifyWithJWKS(g.up.jwks, revoked, "skyflow", "skyflow-api", time.Now())
	rdb := redisOf(t, g)
	rdb.Set(context.Background(), g.redisPrefix+"deny:jti:"+c.ID, "1", time.Minute)
	if a := g.do(t, "POST", "/v1/vaults/v1/customers", revoked, `{}`); a.status != 401 || !strings.Contains(a.envelope(t).Message, "revoked") {
		t.Errorf("revoked token: %d %s", a.status, a.body)
	}
}

func mustDecode(s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// A key rotation needs no restart: a token signed by a key that appears
// in the key set later is accepted once the set is refetched.
func TestNewSigningKeyIsFetchedWithoutRestart(t *testing.T) {
	g := newGateway(t, limits)
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", g.token(nil), ""); a.status != 200 {
		t.Fatalf("first token: %d", a.status)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	kid := base64.RawURLEncoding.EncodeToString([]byte("rotated-kid1"))
	g.up.jwksMu.Lock()
	g.up.jwks = jwksOf(map[string]ed25519.PublicKey{g.kid: g.key.Public().(ed25519.PublicKey), kid: pub})
	g.up.jwksMu.Unlock()
	g.kid, g.key = kid, key
	// The first refetch may be held back by the refetch interval; a
	// client retrying gets in within it.
	deadline := time.Now().Add(signing.DefaultMinRefetch + 5*time.Second)
	for {
		a := g.do(t, "GET", "/v1/vaults/v1/customers", g.token(nil), "")
		if a.status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated key is still refused: %d %s", a.status, a.body)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// API keys: a valid key acts as its service account; a revoked one is
// refused at once. Roles and kinds of principal are checked at the edge.
func TestAPIKeysAndEdgeAuthorization(t *testing.T) {
	g := newGateway(t, limits)
	key := g.APIKey() // a service account with role owner
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", key.Key, ""); a.status != 200 {
		t.Fatalf("API key on a data route: %d %s", a.status, a.body)
	}
	ev := g.up.events("records-get")
	if len(ev) != 1 || !strings.HasPrefix(request.Extension(ev[0], request.ExtPrincipal), "sa:") || request.Extension(ev[0], request.ExtRoles) != "owner" {
		t.Fatalf("the function saw %v", ev)
	}
	if a := g.do(t, "GET", "/v1/serviceaccounts", key.Key, ""); a.status != 403 {
		t.Errorf("an owner on an admin route: %d", a.status)
	}
	if a := g.do(t, "GET", "/v1/users/me", key.Key, ""); a.status != 403 {
		t.Errorf("a service account on a users-only route: %d", a.status)
	}
	// The key is cached now; a change of its roles or its revocation still
	// takes effect on the very next request (the principal's change mark).
	admin := request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}
	if _, err := g.Identity().SetRoles(context.Background(), admin, key.Principal, identity.RolesRequest{Roles: []string{"reader"}}); err != nil {
		t.Fatal(err)
	}
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", key.Key, ""); a.status != 200 {
		t.Fatalf("API key after a change of roles: %d %s", a.status, a.body)
	}
	if ev := g.up.events("records-get"); request.Extension(ev[len(ev)-1], request.ExtRoles) != "reader" {
		t.Errorf("after a change of roles the function saw roles %q, want reader", request.Extension(ev[len(ev)-1], request.ExtRoles))
	}
	if _, err := g.Identity().RevokeAPIKey(context.Background(), admin, key.ID); err != nil {
		t.Fatal(err)
	}
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", key.Key, ""); a.status != 401 {
		t.Errorf("revoked API key: %d %s", a.status, a.body)
	}
	// A user without the admin role: 403 before the function runs.
	before := len(g.up.events("vaults-create"))
	a := g.do(t, "POST", "/v1/management/vaults", g.token(nil), `{}`)
	if a.status != 403 || !strings.Contains(a.envelope(t).Message, "admin") {
		t.Errorf("missing role: %d %s", a.status, a.body)
	}
	if len(g.up.events("vaults-create")) != before {
		t.Error("the function ran for a caller without the role")
	}
	if a := g.do(t, "POST", "/v1/management/vaults", g.token(func(c *signing.Claims) { c.Roles = []string{"admin"} }), `{}`); a.status != 200 {
		t.Errorf("admin token: %d %s", a.status, a.body)
	}
}

// Over the limit: 429 with the headers, per principal; the allowance
// comes back after the period.
func TestRateLimitPerPrincipal(t *testing.T) {
	g := newGateway(t, "data=3/s:3,management=1000/s,auth=2/s:2,anonymous=1000/s")
	alice, bob := g.token(nil), g.token(nil)
	var last answer
	for i := 0; i < 4; i++ {
		last = g.do(t, "GET", "/v1/vaults/v1/customers", alice, "")
		if i < 3 && last.status != 200 {
			t.Fatalf("request %d: %d", i, last.status)
		}
	}
	if last.status != 429 || last.envelope(t).HTTPCode != 429 {
		t.Fatalf("over the limit: %d %s", last.status, last.body)
	}
	for _, h := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if last.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if last.header.Get("RateLimit-Limit") != "3" || last.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("headers %v", last.header)
	}
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", bob, ""); a.status != 200 {
		t.Errorf("another principal shares the bucket: %d", a.status)
	}
	// Anonymous routes are limited per client address.
	statuses := []int{}
	for i := 0; i < 3; i++ {
		statuses = append(statuses, g.do(t, "POST", "/v1/auth/login", "", `{}`).status)
	}
	if statuses[2] != 429 {
		t.Errorf("anonymous burst: %v", statuses)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.do(t, "GET", "/v1/vaults/v1/customers", alice, "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the allowance never came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Cacheable reads are served from Redis (ETag, 304) until an event makes
// them stale; sensitive routes are never cached.
func TestResponseCache(t *testing.T) {
	g := newGateway(t, limits)
	admin := g.token(func(c *signing.Claims) { c.Roles = []string{"admin"} })
	first := g.do(t, "GET", "/v1/management/vaults/v1", admin, "")
	second := g.do(t, "GET", "/v1/management/vaults/v1", admin, "")
	if first.header.Get("X-Cache") != "miss" || second.header.Get("X-Cache") != "hit" || string(first.body) != string(second.body) {
		t.Fatalf("first %q %s, second %q %s", first.header.Get("X-Cache"), first.body, second.header.Get("X-Cache"), second.body)
	}
	if n := len(g.up.events("vaults-get")); n != 1 {
		t.Fatalf("vaults-get ran %d times", n)
	}
	etag := second.header.Get("ETag")
	if a := g.do(t, "GET", "/v1/management/vaults/v1", admin, "", "If-None-Match", etag); a.status != 304 || len(a.body) != 0 {
		t.Errorf("If-None-Match: %d", a.status)
	}
	// Another principal has its own entry.
	if a := g.do(t, "GET", "/v1/management/vaults/v1", g.token(nil), ""); a.header.Get("X-Cache") != "miss" {
		t.Error("another principal got the admin's cached answer")
	}
	// The schema changes: the broker delivers the event, the entry goes.
	changed := event.New()
	changed.SetID(uuid.NewString())
	changed.SetSource("/skyflow/functions/vaults-schema-update")
	changed.SetType("com.skyflow.vault.schema.updated")
	changed.SetExtension("vaultid", "v1")
	changed.SetData(event.ApplicationJSON, map[string]any{"version": 2})
	if status := g.deliver(t, changed, g.broker); status != 202 {
		t.Fatalf("invalidation delivery: %d", status)
	}
	if a := g.do(t, "GET", "/v1/management/vaults/v1", admin, ""); a.header.Get("X-Cache") != "miss" {
		t.Error("still cached after the schema changed")
	}
	// A delivery not signed by the broker is refused.
	forged, _ := sender.GenerateSigner(sender.Broker)
	if status := g.deliver(t, changed, forged); status != 401 {
		t.Errorf("forged invalidation: %d", status)
	}
	// Sensitive routes: no-store, and nothing in Redis.
	rdb := redisOf(t, g)
	keys := func() int {
		n, _ := rdb.Keys(context.Background(), g.redisPrefix+"gw:cache:*").Result()
		return len(n)
	}
	before := keys()
	tok := g.token(nil)
	for _, path := range []string{"/v1/vaults/v1/customers", "/v1/vaults/v1/customers/" + uuid.NewString()} {
		a := g.do(t, "GET", path, tok, "")
		if a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Cache") != "" {
			t.Errorf("%s: Cache-Control %q", path, a.header.Get("Cache-Control"))
		}
	}
	g.do(t, "POST", "/v1/vaults/v1/detokenize", tok, `{}`)
	if after := keys(); after != before {
		t.Errorf("sensitive reads left %d cache entries", after-before)
	}
	if !strings.HasPrefix(cache.Key("x", nil, ""), "x:") {
		t.Error("cache.Key changed shape")
	}
}

func (g *gatewayEnv) deliver(t *testing.T, e event.Event, s *sender.Signer) int {
	req, _ := http.NewRequest("POST", g.url+"/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	s.Authorize(req, e, "gateway")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The request becomes the event the function expects: id, principal,
// path parameters, query and trace context; its errors come back in the
// envelope with their status.
func TestRequestBecomesTheFunctionsEvent(t *testing.T) {
	g := newGateway(t, limits)
	tok := g.token(nil)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	a := g.do(t, "GET", "/v1/vaults/v-9/customers/rec-1?redaction=MASKED&fields=a&fields=b", tok, "",
		"traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if a.status != 200 || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s", a.status, a.body)
	}
	got := g.up.events("records-get-one")
	if len(got) != 1 {
		t.Fatalf("records-get-one got %d events", len(got))
	}
	e := got[0]
	claims, _ := signing.VerifyWithJWKS(g.up.jwks, tok, "skyflow", "skyflow-api", time.Now())
	for ext, want := range map[string]string{
		"principal": claims.Subject, "roles": "checkout", "vaultid": "v-9", "table": "customers", "skyflowid": "rec-1",
		"query": "redaction=MASKED&fields=a&fields=b", "clientaddr": "127.0.0.1",
	} {
		if v := request.Extension(e, ext); v != want {
			t.Errorf("extension %s = %q, want %q", ext, v, want)
		}
	}
	if e.ID() != a.header.Get("X-Request-Id") || e.Type() != "com.skyflow.vault.record.get" || e.Source() != upstream.Source {
		t.Errorf("event %s %s %s, request id %s", e.ID(), e.Type(), e.Source(), a.header.Get("X-Request-Id"))
	}
	if tp := request.Extension(e, "traceparent"); !strings.Contains(tp, traceID) {
		t.Errorf("traceparent %q does not continue the client's trace", tp)
	}
	// Function errors keep their status and message.
	for _, status := range []int{400, 403, 404, 409} {
		a := g.do(t, "POST", "/v1/vaults/v1/customers", tok, fmt.Sprintf(`{"fail":%d}`, status))
		if a.status != status || a.envelope(t).HTTPCode != status || !strings.Contains(a.envelope(t).Message, "the function refused") {
			t.Errorf("function error %d: %d %s", status, a.status, a.body)
		}
	}
	if a := g.do(t, "POST", "/v1/vaults/v1/customers", tok, `{"x":"`+strings.Repeat("a", 5000)+`"}`); a.status != 413 || a.envelope(t).HTTPCode != 413 {
		t.Errorf("oversize body: %d", a.status)
	}
	if a := g.do(t, "GET", "/v2/nothing/here", tok, ""); a.status != 404 || a.envelope(t).HTTPCode != 404 {
		t.Errorf("unknown route: %d %s", a.status, a.body)
	}
	if a := g.do(t, "GET", "/v2/nothing/here", "", ""); a.status != 404 {
		t.Errorf("unknown route, anonymous: %d", a.status)
	}
}

func TestCORSAndOpenAPI(t *testing.T) {
	g := newGateway(t, limits)
	a := g.do(t, "OPTIONS", "/v1/vaults/v1/customers", "", "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", a.status, a.header)
	}
	if a := g.do(t, "OPTIONS", "/v1/vaults/v1/customers", "", "", "Origin", "https://evil.example.com", "Access-Control-Request-Method", "POST"); a.status != 403 || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", a.status, a.header)
	}
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", g.token(nil), "", "Origin", "https://app.example.com"); a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("CORS response headers: %v", a.header)
	}
	// HTTPS is the platform's front's (local/supervisor), as Kourier's in
	// a cluster: see TestServesNoTLS.
	resp, err := http.Get(g.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi: %d %v", resp.StatusCode, err)
	}
	table, _ := routes.Load(routes.Builtin)
	for _, r := range table {
		if doc.Paths[r.Path][strings.ToLower(r.Method)] == nil {
			t.Errorf("openapi.json lacks %s", r.Name())
		}
	}
}

// The gateway serves plain HTTP only: TLS ends in front of it (Kourier, or
// the local platform's front). The settings with which it once served
// HTTPS itself open nothing.
func TestServesNoTLS(t *testing.T) {
	cert, key, err := devcert.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := newGateway(t, limits, "SKYFLOW_TLS_ADDR", addr, "SKYFLOW_TLS_CERT_FILE", cert, "SKYFLOW_TLS_KEY_FILE", key)
	if a := g.do(t, "GET", "/openapi.json", "", ""); a.status != 200 {
		t.Fatalf("openapi over HTTP: %d", a.status)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s, the HTTPS address the gateway was given", addr)
	}
}

func redisOf(t *testing.T, g *gatewayEnv) *redis.Client {
	opts, err := redis.ParseURL(g.Config["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// With Redis unreachable the gateway keeps serving what it safely can:
// anonymous routes and API keys work, rate-limited per replica; access
// tokens are refused with 503, since a revoked one could not be told apart.
func TestRedisUnreachable(t *testing.T) {
	g := newGateway(t, "data=1000/s,management=1000/s,auth=2/s:2,anonymous=1000/s", "REDIS_URL", "redis://127.0.0.1:1/0")
	if a := g.do(t, "GET", "/openapi.json", "", ""); a.status != 200 || a.header.Get("RateLimit-Limit") == "" {
		t.Errorf("anonymous route: %d %v", a.status, a.header)
	}
	key := g.APIKey()
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", key.Key, ""); a.status != 200 {
		t.Errorf("API key: %d %s", a.status, a.body)
	}
	if a := g.do(t, "GET", "/v1/vaults/v1/customers", g.token(nil), ""); a.status != 503 || a.envelope(t).HTTPCode != 503 {
		t.Errorf("access token: %d %s", a.status, a.body)
	}
	var statuses []int
	for range 3 {
		statuses = append(statuses, g.do(t, "POST", "/v1/auth/login", "", `{}`).status)
	}
	if statuses[2] != 429 {
		t.Errorf("the in-process limit did not hold: %v", statuses)
	}
}

// The gateway stays in the load balancer while Redis or PostgreSQL is down
// and degrades per request (see Stop): a Ready method would take every
// replica out at once.
func TestNoReadinessProbe(t *testing.T) {
	if _, ok := any(New()).(host.ReadinessReporter); ok {
		t.Error("the gateway implements host.ReadinessReporter")
	}
}
