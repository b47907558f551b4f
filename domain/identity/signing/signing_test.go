package signing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const (
	testIssuer   = "https://skyflow.test"
	testAudience = "skyflow-api"
)

// clock is a settable clock shared by the keyrings of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKEK(t *testing.T) kek.KEK {
	t.Helper()
	b := make([]byte, kek.KeySize)
	rand.Read(b)
	k, err := kek.NewLocal(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// env is one test's database, KEK and clock.
type env struct {
	pool *pgxpool.Pool
	kek  kek.KEK
	clk  *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{pool: testenv.Pool(t), kek: newKEK(t), clk: newClock()}
}

func (e *env) ring(mods ...func(*Options)) *Keyring {
	o := Options{Issuer: testIssuer, Audience: testAudience, Now: e.clk.Now}
	for _, m := range mods {
		m(&o)
	}
	return NewKeyring(e.pool, e.kek, o)
}

// otherProcess is a keyring on its own pool, as another replica has.
func (e *env) otherProcess(t *testing.T) *Keyring {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), e.pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // before the database is dropped: cleanups are LIFO
	return NewKeyring(pool, e.kek, Options{Issuer: testIssuer, Audience: testAudience, Now: e.clk.Now})
}

// sameClaims compares claims as they are on the wire: a parsed time is in
// the local zone, an issued one in the clock's.
func sameClaims(t *testing.T, a, b Claims) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func userClaims() Claims {
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "user:" + uuid.NewString()},
		Roles:            []string{"vault_owner", "auditor"},
		Kind:             KindUser,
	}
}

func issue(t *testing.T, k *Keyring, c Claims, ttl time.Duration) (string, Claims) {
	t.Helper()
	tok, got, err := k.Issue(t.Context(), c, ttl)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok, got
}

func mustVerify(t *testing.T, k *Keyring, tok string) *Claims {
	t.Helper()
	c, err := k.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	tk, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tk.Header["kid"].(string)
	return kid
}

func countKeys(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM signing_keys`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// want401 checks err is a 401 that does not echo the token.
func want401(t *testing.T, name, tok string, err error) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Errorf("%s: error = %v, want a 401 *apierr.Error", name, err)
		return
	}
	if ae.HTTPCode != http.StatusUnauthorized {
		t.Errorf("%s: status %d (%s), want 401", name, ae.HTTPCode, ae.Message)
	}
	if len(tok) > 8 && strings.Contains(ae.Message, tok) || len(ae.Message) > 80 {
		t.Errorf("%s: message %q is not a short reason", name, ae.Message)
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	now := e.clk.Now()
	in := userClaims()
	tok, out, err := k.Issue(t.Context(), in, 0)
	if err != nil {
		t.Fatal(err)
	}

	// Claims filled.
	if out.Issuer != testIssuer || !reflect.DeepEqual([]string(out.Audience), []string{testAudience}) {
		t.Errorf("iss/aud = %q/%q", out.Issuer, out.Audience)
	}
	if out.Subject != in.Subject || out.Kind != KindUser || !reflect.DeepEqual(out.Roles, in.Roles) {
		t.Errorf("sub/kind/roles = %q/%q/%v", out.Subject, out.Kind, out.Roles)
	}
	if !out.IssuedAt.Equal(now) || !out.NotBefore.Equal(now) || !out.ExpiresAt.Equal(now.Add(DefaultTTL)) {
		t.Errorf("iat/nbf/exp = %v/%v/%v, want %v/%v/%v", out.IssuedAt, out.NotBefore, out.ExpiresAt, now, now, now.Add(DefaultTTL))
	}
	if _, err := uuid.Parse(out.ID); err != nil {
		t.Errorf("jti %q is not a UUID", out.ID)
	}

	// Header: EdDSA and the stored key's kid.
	tk, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	var kid string
	if err := e.pool.QueryRow(t.Context(), `SELECT kid FROM signing_keys`).Scan(&kid); err != nil {
		t.Fatal(err)
	}
	if tk.Header["alg"] != "EdDSA" || tk.Header["kid"] != kid {
		t.Errorf("header = %v, want alg EdDSA, kid %s", tk.Header, kid)
	}

	got := mustVerify(t, k, tok)
	if !sameClaims(t, *got, out) {
		t.Errorf("verified claims\n got %+v\nwant %+v", *got, out)
	}

	// Another process verifies it too, reading the key from the table.
	if got := mustVerify(t, e.otherProcess(t), tok); got.ID != out.ID {
		t.Errorf("other process: jti %q, want %q", got.ID, out.ID)
	}

	// A second token: same key, fresh jti.
	_, out2 := issue(t, k, in, 0)
	if out2.ID == out.ID {
		t.Error("jti reused")
	}
	if n := countKeys(t, e.pool); n != 1 {
		t.Errorf("%d keys, want 1", n)
	}
}

func TestServiceAccountTokenCarriesCtxAndLongerTTL(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	in := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "sa:ci-deployer"},
		Roles:            []string{"vault_editor"},
		Ctx:              map[string]any{"tenant": "acme", "region": "eu"},
		Kind:             KindServiceAccount,
	}
	tok, out := issue(t, k, in, MaxTTL)
	if !out.ExpiresAt.Equal(e.clk.Now().Add(MaxTTL)) {
		t.Errorf("exp = %v", out.ExpiresAt)
	}
	e.clk.Add(MaxTTL - time.Minute)
	got := mustVerify(t, k, tok)
	if !reflect.DeepEqual(got.Ctx, in.Ctx) || got.Kind != KindServiceAccount || got.Subject != "sa:ci-deployer" {
		t.Errorf("claims = %+v", got)
	}
}

func TestIssueRefusesBadClaimsAndLifetimes(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	sa := Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "sa:x"}, Kind: KindServiceAccount}
	cases := []struct {
		name string
		c    Claims
		ttl  time.Duration
	}{
		{"unknown kind", Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user:x"}, Kind: "api_key"}, 0},
		{"no kind", Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user:x"}}, 0},
		{"user subject for service account", Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user:x"}, Kind: KindServiceAccount}, 0},
		{"empty id", Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user:"}, Kind: KindUser}, 0},
		{"user token too long", userClaims(), MaxUserTTL + time.Second},
		{"service account token too long", sa, MaxTTL + time.Second},
		{"negative ttl", sa, -time.Minute},
	}
	for _, c := range cases {
		if _, _, err := k.Issue(t.Context(), c.c, c.ttl); err == nil {
			t.Errorf("%s: issued", c.name)
		}
	}
	if _, _, err := e.ring(func(o *Options) { o.Audience = "" }).Issue(t.Context(), userClaims(), 0); err == nil {
		t.Error("issued without an audience configured")
	}
	if _, err := e.ring(func(o *Options) { o.Issuer = "" }).Verify(t.Context(), "x.y.z"); err == nil {
		t.Error("verified without an issuer configured")
	}
	if n := countKeys(t, e.pool); n != 0 {
		t.Errorf("%d keys made for refused tokens", n)
	}
}

func TestJWKSListsKeyAndVerifies(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	set, err := k.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if string(set) != `{"keys":[]}` {
		t.Errorf("empty set = %s", set)
	}

	tok, out := issue(t, k, userClaims(), 0)
	set, err = k.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(set, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 {
		t.Fatalf("JWKS = %s, want one key", set)
	}
	j := doc.Keys[0]
	var kid string
	var pubDER []byte
	if err := e.pool.QueryRow(t.Context(), `SELECT kid, public_key FROM signing_keys`).Scan(&kid, &pubDER); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub.(ed25519.PublicKey)),
		"kid": kid, "alg": "EdDSA", "use": "sig"}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("JWK\n got %v\nwant %v", j, want)
	}

	got, err := VerifyWithJWKS(set, tok, testIssuer, testAudience, e.clk.Now())
	if err != nil {
		t.Fatalf("VerifyWithJWKS: %v", err)
	}
	if !sameClaims(t, *got, out) {
		t.Errorf("claims\n got %+v\nwant %+v", *got, out)
	}
	if _, err := VerifyWithJWKS([]byte(`{"keys":`), tok, testIssuer, testAudience, e.clk.Now()); err == nil {
		t.Error("a broken JWKS verified")
	}
	// Keys of other types in the set are ignored, not fatal.
	mixed := []byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},` + string(set[len(`{"keys":[`):]))
	if _, err := VerifyWithJWKS(mixed, tok, testIssuer, testAudience, e.clk.Now()); err != nil {
		t.Errorf("mixed set: %v", err)
	}
}

func TestRotation(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	old, oldClaims := issue(t, k, userClaims(), 0)
	oldKid := kidOf(t, old)

	newKid, err := k.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid {
		t.Fatal("Rotate kept the kid")
	}
	fresh, _ := issue(t, k, userClaims(), 0)
	if kidOf(t, fresh) != newKid {
		t.Errorf("new token kid %s, want %s", kidOf(t, fresh), newKid)
	}
	// Another process that cached the old key picks up the new one.
	other := e.otherProcess(t)
	for _, tok := range []string{old, fresh} {
		mustVerify(t, k, tok)
		mustVerify(t, other, tok)
	}
	set, err := k.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{oldKid, newKid} {
		if !bytes.Contains(set, []byte(`"kid":"`+kid+`"`)) {
			t.Errorf("JWKS lacks %s: %s", kid, set)
		}
	}
	for _, tok := range []string{old, fresh} {
		if _, err := VerifyWithJWKS(set, tok, testIssuer, testAudience, e.clk.Now()); err != nil {
			t.Errorf("VerifyWithJWKS: %v", err)
		}
	}

	// The old token verifies until it expires (plus leeway), then not.
	e.clk.Add(oldClaims.ExpiresAt.Sub(e.clk.Now()) + Leeway - time.Second)
	mustVerify(t, k, old)
	e.clk.Add(2 * time.Second)
	_, err = k.Verify(t.Context(), old)
	want401(t, "expired old token", old, err)

	// Rotation by age: Issue makes a new key once RotateEvery has passed.
	e.clk.Add(DefaultRotateEvery)
	aged, _ := issue(t, k, userClaims(), 0)
	if kid := kidOf(t, aged); kid == newKid || kid == oldKid {
		t.Errorf("no rotation after RotateEvery: kid %s", kid)
	}
	if n := countKeys(t, e.pool); n != 3 {
		t.Errorf("%d keys, want 3", n)
	}
}

func TestKeyPastVerifyUntilIsGone(t *testing.T) {
	e := newEnv(t)
	k := e.ring(func(o *Options) { o.RotateEvery = time.Hour })
	tok, _ := issue(t, k, userClaims(), 0)
	oldKid := kidOf(t, tok)
	oldPriv := k.st.Load().signer.priv
	var verifyUntil time.Time
	if err := e.pool.QueryRow(t.Context(), `SELECT verify_until FROM signing_keys WHERE kid = $1`, oldKid).Scan(&verifyUntil); err != nil {
		t.Fatal(err)
	}
	if want := e.clk.Now().Add(time.Hour + signSlack + MaxTTL + verifySkew); !verifyUntil.Equal(want) {
		t.Errorf("verify_until = %v, want %v", verifyUntil, want)
	}
	e.clk.Add(30 * time.Minute) // the new key outlives the old one
	if _, err := k.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}

	// A token signed with the old key that is otherwise valid for longer
	// than the key: only the key's retirement refuses it.
	e.clk.Add(verifyUntil.Sub(e.clk.Now()) - time.Second)
	longLived := forge(t, jwt.SigningMethodEdDSA, oldPriv, oldKid, validClaims(e.clk.Now()))
	mustVerify(t, k, longLived) // a second before verify_until
	e.clk.Add(time.Second)

	set, err := k.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(set, []byte(oldKid)) {
		t.Errorf("JWKS still lists the retired key: %s", set)
	}
	if !bytes.Contains(set, []byte(`"kid"`)) {
		t.Errorf("JWKS lost the current key too: %s", set)
	}
	_, err = k.Verify(t.Context(), longLived)
	want401(t, "retired key (cached)", longLived, err)
	_, err = e.otherProcess(t).Verify(t.Context(), longLived)
	want401(t, "retired key (read from table)", longLived, err)
	_, err = VerifyWithJWKS(set, longLived, testIssuer, testAudience, e.clk.Now())
	want401(t, "retired key (JWKS)", longLived, err)
}

func TestConcurrentIssueMakesOneKey(t *testing.T) {
	e := newEnv(t)
	rings := []*Keyring{e.otherProcess(t), e.otherProcess(t)}
	issueAll := func() map[string]bool {
		var mu sync.Mutex
		kids := map[string]bool{}
		var wg sync.WaitGroup
		for i := range 16 {
			k := rings[i%2]
			wg.Go(func() {
				tok, _, err := k.Issue(context.Background(), userClaims(), 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				kids[kidOf(t, tok)] = true
			})
		}
		wg.Wait()
		return kids
	}
	if kids := issueAll(); len(kids) != 1 {
		t.Errorf("tokens signed with %d keys, want 1", len(kids))
	}
	if n := countKeys(t, e.pool); n != 1 {
		t.Fatalf("%d keys made, want 1", n)
	}
	// And when the key is due for rotation, they make one new key.
	e.clk.Add(DefaultRotateEvery)
	if kids := issueAll(); len(kids) != 1 {
		t.Errorf("tokens signed with %d keys after rotation, want 1", len(kids))
	}
	if n := countKeys(t, e.pool); n != 2 {
		t.Errorf("%d keys after rotation, want 2", n)
	}
}

// validClaims are claims that pass every check at now.
func validClaims(now time.Time) Claims {
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "user:" + uuid.NewString(),
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		Roles: []string{"vault_owner"},
		Kind:  KindUser,
	}
}

// forge signs c with any method and key, as an attacker (or a key holder)
// would.
func forge(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, c)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestAttacksAreRefused(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	good, _ := issue(t, k, userClaims(), 0)
	kid := kidOf(t, good)
	signer := k.st.Load().signer
	priv, pub := signer.priv, signer.pub
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clk.Now()
	set, err := k.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// The forging works: a valid token made this way verifies.
	if _, err := k.Verify(t.Context(), forge(t, jwt.SigningMethodEdDSA, priv, kid, validClaims(now))); err != nil {
		t.Fatalf("control token refused: %v", err)
	}

	with := func(f func(*Claims)) Claims {
		c := validClaims(now)
		f(&c)
		return c
	}
	parts := strings.Split(good, ".")
	tampered := with(func(c *Claims) { c.Roles = []string{"vault_owner", "platform_admin"} })
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	noneHeader := b64json(t, map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	payload := b64json(t, validClaims(now))

	attacks := map[string]string{
		"expired": forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-Leeway - time.Second))
		})),
		"not yet valid": forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(Leeway + time.Second))
		})),
		"issued in the future": forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour))
		})),
		"no exp":         forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.ExpiresAt = nil })),
		"no jti":         forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.ID = "" })),
		"no subject":     forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.Subject = "" })),
		"wrong issuer":   forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.Issuer = "https://evil.test" })),
		"no issuer":      forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.Issuer = "" })),
		"wrong audience": forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other-api"} })),
		"no audience":    forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *Claims) { c.Audience = nil })),
		"crit header": func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, validClaims(now))
			tk.Header["kid"], tk.Header["crit"] = kid, []string{"exp"}
			s, _ := tk.SignedString(priv)
			return s
		}(),
		"tampered payload":            parts[0] + "." + b64json(t, tampered) + "." + parts[2],
		"tampered signature":          parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
		"alg none":                    noneHeader + "." + payload + ".",
		"alg none with signature":     noneHeader + "." + payload + "." + parts[2],
		"alg none via library":        forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, validClaims(now)),
		"HS256 with raw public key":   forge(t, jwt.SigningMethodHS256, []byte(pub), kid, validClaims(now)),
		"HS256 with PKIX public key":  forge(t, jwt.SigningMethodHS256, pubDER, kid, validClaims(now)),
		"HS256 with JWKS x":           forge(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), kid, validClaims(now)),
		"RS256 with an unrelated key": forge(t, jwt.SigningMethodRS256, rsaKey, kid, validClaims(now)),
		"unknown alg":                 b64json(t, map[string]string{"alg": "ES999", "kid": kid}) + "." + payload + "." + parts[2],
		"unknown kid":                 forge(t, jwt.SigningMethodEdDSA, strangerKey, base64.RawURLEncoding.EncodeToString(make([]byte, kidBytes)), validClaims(now)),
		"implausible kid":             forge(t, jwt.SigningMethodEdDSA, strangerKey, "../../etc/passwd", validClaims(now)),
		"real kid, another key":       forge(t, jwt.SigningMethodEdDSA, strangerKey, kid, validClaims(now)),
		"missing kid":                 forge(t, jwt.SigningMethodEdDSA, priv, "", validClaims(now)),
		"empty":                       "",
		"garbage":                     "garbage",
		"three dots":                  "a.b.c",
		"two segments":                parts[0] + "." + parts[1],
		"four segments":               good + ".x",
		"not base64":                  "!!!." + parts[1] + "." + parts[2],
		"huge":                        parts[0] + "." + strings.Repeat("A", 10000) + "." + parts[2],
	}
	for name, tok := range attacks {
		_, err := k.Verify(t.Context(), tok)
		want401(t, name, tok, err)
		_, err = VerifyWithJWKS(set, tok, testIssuer, testAudience, now)
		want401(t, name+" (JWKS)", tok, err)
	}
	// A token valid for another audience or issuer is refused too when
	// issued by a correctly configured keyring elsewhere.
	otherAud, _ := issue(t, e.ring(func(o *Options) { o.Audience = "other-api" }), userClaims(), 0)
	_, err = k.Verify(t.Context(), otherAud)
	want401(t, "other audience's keyring", otherAud, err)
	otherIss, _ := issue(t, e.ring(func(o *Options) { o.Issuer = "https://other.test" }), userClaims(), 0)
	_, err = k.Verify(t.Context(), otherIss)
	want401(t, "other issuer's keyring", otherIss, err)

	// Expiry by the clock, on a token Issue made.
	e.clk.Add(DefaultTTL + Leeway + time.Second)
	_, err = k.Verify(t.Context(), good)
	want401(t, "expired issued token", good, err)
}

func TestVerifyReasons(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	tok, _ := issue(t, k, userClaims(), 0)
	e.clk.Add(time.Hour)
	_, err := k.Verify(t.Context(), tok)
	if ae := apierr.From(err); ae.HTTPCode != 401 || !strings.Contains(ae.Message, "expired") {
		t.Errorf("expired: %v", err)
	}
	hs := forge(t, jwt.SigningMethodHS256, []byte(k.st.Load().signer.pub), kidOf(t, tok), validClaims(e.clk.Now()))
	_, err = k.Verify(t.Context(), hs)
	if ae := apierr.From(err); !strings.Contains(ae.Message, "algorithm") {
		t.Errorf("HS256: %v", err)
	}
}

func TestUnreachableDatabaseIsNotA401(t *testing.T) {
	e := newEnv(t)
	tok, _ := issue(t, e.ring(), userClaims(), 0)
	pool, err := pgxpool.NewWithConfig(context.Background(), e.pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	_, err = NewKeyring(pool, e.kek, Options{Issuer: testIssuer, Audience: testAudience, Now: e.clk.Now}).Verify(t.Context(), tok)
	var ae *apierr.Error
	if err == nil || errors.As(err, &ae) {
		t.Errorf("Verify with the database down = %v, want a non-API error", err)
	}
}

func TestPrivateKeyIsStoredWrapped(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	tok, _ := issue(t, k, userClaims(), 0)
	kid := kidOf(t, tok)
	seed := k.st.Load().signer.priv.Seed()

	var wrapped []byte
	var kekID, alg string
	if err := e.pool.QueryRow(t.Context(), `SELECT private_key, kek_id, alg FROM signing_keys WHERE kid = $1`, kid).
		Scan(&wrapped, &kekID, &alg); err != nil {
		t.Fatal(err)
	}
	if kekID != e.kek.ID() || alg != "EdDSA" {
		t.Errorf("kek_id/alg = %q/%q", kekID, alg)
	}
	if bytes.Contains(wrapped, seed) {
		t.Fatal("private_key holds the raw Ed25519 seed")
	}
	der, err := e.kek.Decrypt(wrapped, []byte("skyflow/signing-key/"+kid))
	if err != nil {
		t.Fatalf("unwrap with the documented associated data: %v", err)
	}
	if bytes.Contains(wrapped, der) {
		t.Fatal("private_key holds the PKCS #8 private key in clear")
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(priv.(ed25519.PrivateKey).Seed(), seed) {
		t.Error("unwrapped key is not the signing key")
	}
	if _, err := e.kek.Decrypt(wrapped, []byte("skyflow/signing-key/other")); err == nil {
		t.Error("wrapped key unwraps under another kid")
	}
	// A row whose wrapped key was swapped in from another kid does not sign.
	if _, err := k.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(t.Context(), `UPDATE signing_keys SET private_key = $1 WHERE kid <> $2`, wrapped, kid); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.otherProcess(t).Issue(t.Context(), userClaims(), 0); err == nil {
		t.Error("signed with a private key swapped in from another row")
	}
	if n := countKeys(t, e.pool); n != 2 {
		t.Errorf("%d keys: an unusable key made Issue create another", n)
	}
	// Formatting a cached key never prints its private key.
	kk := &key{kid: "k", priv: priv.(ed25519.PrivateKey)}
	if got := fmt.Sprintf("%v %+v %#v %s", kk, kk, kk, kk); got != strings.Repeat("signing key k ", 3)+"signing key k" {
		t.Errorf("key formats as %q", got)
	}
}

func TestStaleCacheSeesAnotherProcessRotate(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	first, _ := issue(t, k, userClaims(), 0)
	newKid, err := e.otherProcess(t).Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Within cacheFor this process keeps signing with the key it has...
	if tok, _ := issue(t, k, userClaims(), 0); kidOf(t, tok) != kidOf(t, first) {
		t.Errorf("re-read the keys before the cache was stale")
	}
	// ...and once the cache is stale it signs with the other's new key.
	st := *k.st.Load()
	st.started = time.Now().Add(-cacheFor - time.Second)
	k.st.Store(&st)
	if tok, _ := issue(t, k, userClaims(), 0); kidOf(t, tok) != newKid {
		t.Errorf("stale cache: signed with %s, want the new key %s", kidOf(t, tok), newKid)
	}
	mustVerify(t, k, first)
}
