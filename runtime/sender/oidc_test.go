package sender_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/runtime/sender"

	"sigs.k8s.io/yaml"
)

const (
	brokerSA = "system:serviceaccount:knative-eventing:kafka-broker-dispatcher"
	pingSA   = "system:serviceaccount:knative-eventing:pingsource-mt-adapter"
	// The ping entry uses a custom audience template.
	pingAudience = "serving.knative.dev/service/skyflow/{function}"
)

// issuer is a Kubernetes-like service-account token issuer over TLS.
type issuer struct {
	*httptest.Server
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey

	mu      sync.Mutex
	keys    []map[string]string // the JWKS it serves
	bearer  string              // when set, both documents require it
	jwksURI string              // when set, the discovery document points there

	fetches atomic.Int32 // of the JWKS
	auth    atomic.Value // the last Authorization header of a JWKS fetch
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	iss := &issuer{rsaKey: rsaKey(t), ecKey: ecKey(t)}
	iss.keys = []map[string]string{rsaJWK("rsa-1", &iss.rsaKey.PublicKey), ecJWK("ec-1", &iss.ecKey.PublicKey)}
	iss.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		defer iss.mu.Unlock()
		if iss.bearer != "" && r.Header.Get("Authorization") != "Bearer "+iss.bearer {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			jwks := iss.jwksURI
			if jwks == "" {
				jwks = iss.URL + "/openid/v1/jwks"
			}
			json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": jwks})
		case "/openid/v1/jwks":
			iss.fetches.Add(1)
			iss.auth.Store(r.Header.Get("Authorization"))
			json.NewEncoder(w).Encode(map[string]any{"keys": iss.keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(iss.Close)
	return iss
}

func (iss *issuer) set(f func()) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	f()
}

func (iss *issuer) setKeys(keys ...map[string]string) { iss.set(func() { iss.keys = keys }) }

// spec trusts the broker's and the ping source's service accounts.
func (iss *issuer) spec() string {
	return "broker=" + iss.URL + " " + brokerSA + "; ping=" + iss.URL + " " + pingSA + " " + pingAudience
}

// token is what the issuer would give sub for aud, valid for an hour.
func (iss *issuer) token(t *testing.T, method jwt.SigningMethod, kid, sub string, aud ...string) string {
	c := iss.claims(sub, aud...)
	return sign(t, method, kid, c, iss.keyFor(method))
}

func (iss *issuer) claims(sub string, aud ...string) jwt.MapClaims {
	now := clockStart
	return jwt.MapClaims{"iss": iss.URL, "sub": sub, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "knative-eventing"}}
}

func (iss *issuer) keyFor(method jwt.SigningMethod) any {
	if strings.HasPrefix(method.Alg(), "ES") {
		return iss.ecKey
	}
	return iss.rsaKey
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, c jwt.Claims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	b, _ := k.Bytes() // 0x04 || x || y
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:])}
}

// clock is the key cache's clock, moved by the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

var clockStart = time.Now().Truncate(time.Second)

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func oidcVerifier(t *testing.T, iss *issuer) (*sender.Verifier, *clock) {
	t.Helper()
	clk := &clock{t: clockStart}
	v, err := sender.ParseVerifier("", iss.spec(), sender.OIDCOptions{
		HTTPClient: iss.Client(), TokenFile: filepath.Join(t.TempDir(), "absent"), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v, clk
}

func TestAValidOIDCTokenNamesItsSender(t *testing.T) {
	iss := newIssuer(t)
	gw, _ := sender.GenerateSigner(sender.Gateway)
	clk := &clock{t: clockStart}
	// Both variables: the Ed25519 assertions keep working beside OIDC.
	v, err := sender.ParseVerifier(gw.Name()+"="+gw.PublicKey(), iss.spec(), sender.OIDCOptions{HTTPClient: iss.Client(), Now: clk.Now, TokenFile: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	now := clockStart.Add(time.Minute)
	cases := []struct {
		name, token, want string
	}{
		{"RS256", iss.token(t, jwt.SigningMethodRS256, "rsa-1", brokerSA, "records-insert"), sender.Broker},
		{"ES256", iss.token(t, jwt.SigningMethodES256, "ec-1", brokerSA, "other", "records-insert"), sender.Broker},
		{"audience template", iss.token(t, jwt.SigningMethodRS256, "rsa-1", pingSA, "serving.knative.dev/service/skyflow/records-insert"), sender.Ping},
		{"no kid", sign(t, jwt.SigningMethodES256, "", iss.claims(brokerSA, "records-insert"), iss.ecKey), sender.Broker},
	}
	for _, c := range cases {
		got, err := v.Verify("Bearer "+c.token, newEvent(), "records-insert", now)
		if err != nil || got.Issuer != c.want || got.Subject == "" || got.ID != "" {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
	}
	assertion, _ := gw.Sign(newEvent(), "records-insert", now)
	if got, err := v.Verify("Bearer "+assertion, newEvent(), "records-insert", now); err != nil || got.Issuer != sender.Gateway {
		t.Fatalf("Ed25519 beside OIDC: %+v, %v", got, err)
	}
	if n := iss.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 (cached)", n)
	}
}

// Every way of forging or misdirecting a token is refused.
func TestOIDCAttacksAreRefused(t *testing.T) {
	iss := newIssuer(t)
	other := newIssuer(t) // a real issuer nobody trusts
	v, _ := oidcVerifier(t, iss)
	now := clockStart.Add(time.Minute)
	good := iss.token(t, jwt.SigningMethodRS256, "rsa-1", brokerSA, "records-insert")
	if _, err := v.Verify("Bearer "+good, newEvent(), "records-insert", now); err != nil {
		t.Fatal(err)
	}
	with := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := iss.claims(brokerSA, "records-insert")
		f(c)
		return c
	}
	stranger := rsaKey(t)
	cases := map[string]struct {
		token string
		fn    string
		at    time.Time
	}{
		"other service account": {iss.token(t, jwt.SigningMethodRS256, "rsa-1", "system:serviceaccount:default:default", "records-insert"), "records-insert", now},
		"other function":        {good, "records-delete", now},
		"template not applied":  {iss.token(t, jwt.SigningMethodRS256, "rsa-1", pingSA, "records-insert"), "records-insert", now},
		"untrusted issuer":      {other.token(t, jwt.SigningMethodRS256, "rsa-1", brokerSA, "records-insert"), "records-insert", now},
		"issuer name as iss":    {sign(t, jwt.SigningMethodRS256, "rsa-1", with(func(c jwt.MapClaims) { c["iss"] = "broker" }), iss.rsaKey), "records-insert", now},
		"expired":               {good, "records-insert", clockStart.Add(2 * time.Hour)},
		"no exp":                {sign(t, jwt.SigningMethodRS256, "rsa-1", with(func(c jwt.MapClaims) { delete(c, "exp") }), iss.rsaKey), "records-insert", now},
		"not yet valid":         {sign(t, jwt.SigningMethodRS256, "rsa-1", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), iss.rsaKey), "records-insert", now},
		"issued in the future":  {sign(t, jwt.SigningMethodRS256, "rsa-1", with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), iss.rsaKey), "records-insert", now},
		"alg none":              {withHeader(good, `{"alg":"none","typ":"JWT","kid":"rsa-1"}`) + ".", "records-insert", now},
		"hs256 with the pem":    {hmacWith(t, good, pemOf(t, &iss.rsaKey.PublicKey)), "records-insert", now},
		"hs256 with the der":    {hmacWith(t, good, derOf(t, &iss.rsaKey.PublicKey)), "records-insert", now},
		"unknown key, same kid": {sign(t, jwt.SigningMethodRS256, "rsa-1", iss.claims(brokerSA, "records-insert"), stranger), "records-insert", now},
		"unknown key and kid":   {sign(t, jwt.SigningMethodRS256, "rsa-9", iss.claims(brokerSA, "records-insert"), stranger), "records-insert", now},
		"ec token, rsa kid":     {sign(t, jwt.SigningMethodES256, "rsa-1", iss.claims(brokerSA, "records-insert"), iss.ecKey), "records-insert", now},
		"rs384 on an RS256 key": {sign(t, jwt.SigningMethodRS384, "rsa-1", iss.claims(brokerSA, "records-insert"), iss.rsaKey), "records-insert", now},
		"ps256":                 {sign(t, jwt.SigningMethodPS256, "rsa-1", iss.claims(brokerSA, "records-insert"), iss.rsaKey), "records-insert", now},
		"tampered payload":      {tamper(t, good), "records-insert", now},
		"garbage":               {"not.a.jwt", "records-insert", now},
	}
	for name, c := range cases {
		_, err := v.Verify("Bearer "+c.token, newEvent(), c.fn, c.at)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !errors.Is(err, sender.ErrInvalid):
			t.Errorf("%s: %v does not wrap ErrInvalid", name, err)
		case strings.Contains(err.Error(), c.token) || strings.Contains(err.Error(), good):
			t.Errorf("%s: the error echoes the token", name)
		}
	}
	if n := other.fetches.Load(); n != 0 {
		t.Fatalf("the untrusted issuer was asked for its keys %d times", n)
	}
}

// withHeader replaces token's header, keeping its claims.
func withHeader(token, header string) string {
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1]
}

// hmacWith signs token's claims with HS256 and secret (a public key's bytes).
func hmacWith(t *testing.T, token string, secret []byte) string {
	signed := withHeader(token, `{"alg":"HS256","typ":"JWT","kid":"rsa-1"}`)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func derOf(t *testing.T, k *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemOf(t *testing.T, k *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: derOf(t, k)})
}

// tamper changes the token's subject, keeping its signature.
func tamper(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	changed := strings.Replace(string(payload), "records-insert", "records-delete", 1)
	if changed == string(payload) {
		t.Fatal("nothing to tamper with")
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(changed)) + "." + parts[2]
}

// A rotated key is picked up without a new verifier, and a flood of
// unknown kids costs the issuer at most one fetch per interval.
func TestOIDCKeyRotation(t *testing.T) {
	iss := newIssuer(t)
	v, clk := oidcVerifier(t, iss)
	verify := func(token string) error {
		_, err := v.Verify("Bearer "+token, newEvent(), "records-insert", clockStart.Add(time.Minute))
		return err
	}
	old := iss.token(t, jwt.SigningMethodRS256, "rsa-1", brokerSA, "records-insert")
	if err := verify(old); err != nil {
		t.Fatal(err)
	}
	next := rsaKey(t)
	iss.setKeys(rsaJWK("rsa-2", &next.PublicKey))
	rotated := sign(t, jwt.SigningMethodRS256, "rsa-2", iss.claims(brokerSA, "records-insert"), next)

	// Within the interval the unknown kid is refused without a fetch,
	// however many ask at once.
	concurrently(50, func() {
		if verify(rotated) == nil {
			t.Error("accepted before the refetch interval")
		}
	})
	if n := iss.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches within the interval, want 1", n)
	}
	clk.advance(11 * time.Second)
	concurrently(50, func() {
		if err := verify(rotated); err != nil {
			t.Error(err)
		}
	})
	if n := iss.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after the interval, want 2", n)
	}
	// The retired key is gone from the set: its tokens are refused.
	if verify(old) == nil {
		t.Fatal("a token of a retired key was accepted")
	}
	// Known keys are used for 10 minutes, then refreshed once.
	clk.advance(5 * time.Minute)
	if err := verify(rotated); err != nil || iss.fetches.Load() != 2 {
		t.Fatalf("a fresh key set was fetched again: %d fetches, %v", iss.fetches.Load(), err)
	}
	clk.advance(5 * time.Minute)
	concurrently(50, func() {
		if err := verify(rotated); err != nil {
			t.Error(err)
		}
	})
	if n := iss.fetches.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches after the refresh period, want 3", n)
	}
}

func concurrently(n int, f func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(f)
	}
	wg.Wait()
}

// The pod's service-account token authenticates the fetches to the issuer,
// and to no other origin.
func TestOIDCFetchesWithTheServiceAccountToken(t *testing.T) {
	iss := newIssuer(t)
	iss.set(func() { iss.bearer = "pod-sa-token" })
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("pod-sa-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := iss.token(t, jwt.SigningMethodRS256, "rsa-1", brokerSA, "records-insert")
	now := clockStart.Add(time.Minute)

	without, _ := oidcVerifier(t, iss) // its token file is absent
	_, err := without.Verify("Bearer "+token, newEvent(), "records-insert", now)
	if !errors.Is(err, sender.ErrKeysUnavailable) || !errors.Is(err, sender.ErrInvalid) || strings.Contains(err.Error(), token) {
		t.Fatalf("without the token: %v", err)
	}

	with, err := sender.ParseVerifier("", iss.spec(), sender.OIDCOptions{HTTPClient: iss.Client(), TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := with.Verify("Bearer "+token, newEvent(), "records-insert", now); err != nil {
		t.Fatal(err)
	}
	if got := iss.auth.Load(); got != "Bearer pod-sa-token" {
		t.Fatalf("the JWKS fetch carried %q", got)
	}

	// A key set served from elsewhere does not get the pod's token.
	elsewhere := newIssuer(t)
	elsewhere.setKeys(rsaJWK("rsa-1", &iss.rsaKey.PublicKey))
	iss.set(func() { iss.jwksURI = elsewhere.URL + "/openid/v1/jwks" })
	v, err := sender.ParseVerifier("", iss.spec(), sender.OIDCOptions{HTTPClient: iss.Client(), TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify("Bearer "+token, newEvent(), "records-insert", now); err != nil {
		t.Fatal(err)
	}
	if got := elsewhere.auth.Load(); got != "" {
		t.Fatalf("the pod's token was sent to another origin: %q", got)
	}
}

func TestParseTrustedOIDCRefusesBadSpecs(t *testing.T) {
	bad := map[string]string{
		"broker":             "want name=<issuer URL> <subject>",
		"broker=":            "want name=<issuer URL> <subject>",
		"=https://k8s sub":   "want name=<issuer URL> <subject>",
		"broker=https://k8s": "want name=<issuer URL> <subject>",
		"broker=https://k8s sub {function} extra":      "want name=<issuer URL> <subject>",
		"broker=http://k8s sub":                        "want an https URL",
		"broker=k8s sub":                               "want an https URL",
		"broker=https://k8s?x=1 sub":                   "want an https URL",
		"broker=https://k8s sub fixed-audience":        "must contain {function}",
		"broker=https://k8s sub; ping=https://k8s sub": `"broker" and "ping"`,
	}
	for spec, want := range bad {
		if _, err := sender.ParseTrustedOIDC(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
		if err := sender.NewVerifier().TrustOIDC(spec, sender.OIDCOptions{}); err == nil {
			t.Errorf("TrustOIDC(%q) accepted", spec)
		}
	}
	got, err := sender.ParseTrustedOIDC(" broker=https://k8s " + brokerSA + " ;; ping=https://k8s " + pingSA + " " + pingAudience + ";")
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v, %v", got, err)
	}
	if got[0].Name != "broker" || got[0].AudienceFor("f") != "f" || got[1].AudienceFor("f") != "serving.knative.dev/service/skyflow/f" {
		t.Fatalf("%+v", got)
	}
	// A second TrustOIDC may not give a trusted identity another name.
	v := sender.NewVerifier()
	if err := v.TrustOIDC("broker=https://k8s "+brokerSA, sender.OIDCOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := v.TrustOIDC("ping=https://k8s "+brokerSA, sender.OIDCOptions{}); err == nil {
		t.Fatal("the broker's identity was trusted again as the ping source")
	}
}

func TestParseVerifierNeedsSomeSender(t *testing.T) {
	o := sender.OIDCOptions{}
	for _, c := range [][2]string{{"", ""}, {" ", " "}, {"", ";"}, {",", ""}} {
		if _, err := sender.ParseVerifier(c[0], c[1], o); err == nil || !strings.Contains(err.Error(), "every event would be refused") {
			t.Errorf("%q: %v", c, err)
		}
	}
	gw, _ := sender.GenerateSigner(sender.Gateway)
	if v, err := sender.ParseVerifier(gw.Name()+"="+gw.PublicKey(), "", o); err != nil || v.Trusted() == "" {
		t.Fatalf("Ed25519 only: %v", err)
	}
	if v, err := sender.ParseVerifier("", "broker=https://k8s "+brokerSA, o); err != nil || v.Trusted() != "" {
		t.Fatalf("OIDC only: %v", err)
	}
	if _, err := sender.ParseVerifier("gateway=bad", "broker=https://k8s "+brokerSA, o); err == nil {
		t.Fatal("a bad Ed25519 entry was accepted")
	}
	if _, err := sender.ParseVerifier(gw.Name()+"="+gw.PublicKey(), "broker", o); err == nil {
		t.Fatal("a bad OIDC entry was accepted")
	}
	// An OIDC-only verifier refuses an Ed25519 assertion.
	v, _ := sender.ParseVerifier("", "broker=https://k8s "+brokerSA, o)
	assertion, _ := gw.Sign(newEvent(), "records-insert", time.Now())
	if _, err := v.Verify("Bearer "+assertion, newEvent(), "records-insert", time.Now()); !errors.Is(err, sender.ErrInvalid) {
		t.Fatalf("Ed25519 assertion on an OIDC-only verifier: %v", err)
	}
}

// The cluster's ConfigMap names OIDC senders this package can read.
func TestClusterConfigMapTrustedOIDCParses(t *testing.T) {
	b, err := os.ReadFile("../../knative/base/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct{ Data map[string]string }
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	senders, err := sender.ParseTrustedOIDC(cm.Data["trusted-oidc"])
	if err != nil || len(senders) != 2 || senders[0].Name != sender.Broker || senders[1].Name != sender.Ping {
		t.Fatalf("trusted-oidc: %+v, %v", senders, err)
	}
}
