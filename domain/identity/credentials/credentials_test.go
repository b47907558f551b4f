package credentials_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestNewClientID(t *testing.T) {
	a, b := credentials.NewClientID(), credentials.NewClientID()
	if !hex32.MatchString(a) || !hex32.MatchString(b) {
		t.Fatalf("client ids %q, %q: want 32 lower-case hex digits", a, b)
	}
	if a == b {
		t.Fatal("two client ids are equal")
	}
}

func TestCredentialsJSON(t *testing.T) {
	a, b := testPairs(t)
	if !hex32.MatchString(a.creds.KeyID) || a.creds.KeyID == b.creds.KeyID {
		t.Errorf("keyIDs %q, %q: want distinct 32 lower-case hex digits", a.creds.KeyID, b.creds.KeyID)
	}
	if !strings.HasPrefix(a.creds.PrivateKey, "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("privateKey does not start with a PKCS#8 PEM header")
	}
	if a.priv.N.BitLen() != 2048 {
		t.Errorf("key is %d bits, want 2048", a.priv.N.BitLen())
	}
	if !a.priv.PublicKey.Equal(a.pub) {
		t.Error("publicKeyDER is not the public half of privateKey")
	}
	if a.creds.ClientName != "test account" || a.creds.TokenURI != tokenURI {
		t.Errorf("creds = %+v", a.creds)
	}

	raw, err := json.Marshal(a.creds)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if want := []string{"clientID", "clientName", "keyID", "privateKey", "tokenURI"}; !reflect.DeepEqual(names, want) {
		t.Errorf("credentials.json fields = %v, want %v", names, want)
	}
	var back credentials.Credentials
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back != a.creds {
		t.Error("credentials.json does not round-trip")
	}
	// A file written by Skyflow reads back field for field.
	var sdk credentials.Credentials
	if err := json.Unmarshal([]byte(`{"clientID":"c","clientName":"n","keyID":"k","tokenURI":"https://t","privateKey":"p"}`), &sdk); err != nil {
		t.Fatal(err)
	}
	if sdk != (credentials.Credentials{ClientID: "c", ClientName: "n", KeyID: "k", TokenURI: "https://t", PrivateKey: "p"}) {
		t.Errorf("parsed %+v", sdk)
	}

	pub, err := credentials.ParsePublicKey(a.der)
	if err != nil || !pub.Equal(a.pub) {
		t.Errorf("ParsePublicKey: %v", err)
	}
	if _, err := credentials.ParsePublicKey([]byte("junk")); err == nil {
		t.Error("ParsePublicKey accepted junk")
	}
}

func TestNewKeyPairNeedsIDs(t *testing.T) {
	if _, _, err := credentials.NewKeyPair("", "n", tokenURI); err == nil {
		t.Error("no client id accepted")
	}
	if _, _, err := credentials.NewKeyPair("c", "n", ""); err == nil {
		t.Error("no token URI accepted")
	}
}

func TestSignAndVerify(t *testing.T) {
	a, b := testPairs(t)
	ctxClaim := map[string]any{"user": "u-42"}
	s, err := credentials.SignAssertion(a.creds, time.Hour, ctxClaim, testNow)
	if err != nil {
		t.Fatal(err)
	}
	c, err := credentials.VerifyAssertion(context.Background(), s, tokenURI, testNow, lookupOf(a, b))
	if err != nil {
		t.Fatalf("VerifyAssertion: %v", err)
	}
	if c.Issuer != a.creds.ClientID || c.Subject != a.creds.ClientID || c.Key != a.creds.KeyID {
		t.Errorf("claims = %+v", c)
	}
	if !c.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Errorf("exp = %v, want %v", c.ExpiresAt, testNow.Add(time.Hour))
	}
	if !reflect.DeepEqual(c.Ctx, map[string]any{"user": "u-42"}) {
		t.Errorf("ctx = %#v", c.Ctx)
	}
	if c.ID == "" {
		t.Error("SignAssertion set no jti")
	}

	// The claims are the SDKs': aud a string, not an array.
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	if m["aud"] != tokenURI || m["iss"] != a.creds.ClientID || m["sub"] != a.creds.ClientID || m["key"] != a.creds.KeyID {
		t.Errorf("payload = %s", payload)
	}

	// Without ctx there is no ctx claim; a string ctx comes back a string.
	s2, err := credentials.SignAssertion(b.creds, time.Minute, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := credentials.VerifyAssertion(context.Background(), s2, tokenURI, testNow, lookupOf(a, b)); err != nil || c.Ctx != nil {
		t.Errorf("no ctx: %v, %#v", err, c)
	}
	s3, _ := credentials.SignAssertion(a.creds, time.Minute, "req-7", testNow)
	if c, err := credentials.VerifyAssertion(context.Background(), s3, tokenURI, testNow, lookupOf(a)); err != nil || c.Ctx != "req-7" {
		t.Errorf("string ctx: %v, %#v", err, c)
	}

	// Two assertions signed in the same second differ (jti).
	if s4, _ := credentials.SignAssertion(b.creds, time.Minute, nil, testNow); s4 == s2 {
		t.Error("two assertions signed at once are equal")
	}

	// An SDK's assertion (no jti, no iat) with aud as a one-element array
	// and a PKCS#1 key is accepted too.
	cl := claimsOf(a)
	cl["aud"] = []string{tokenURI}
	if _, err := credentials.VerifyAssertion(context.Background(), sign(t, jwt.SigningMethodRS256, a.priv, cl), tokenURI, testNow, lookupOf(a)); err != nil {
		t.Errorf("SDK assertion: %v", err)
	}
	pkcs1 := a.creds
	pkcs1.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(a.priv)}))
	s5, err := credentials.SignAssertion(pkcs1, time.Minute, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := credentials.VerifyAssertion(context.Background(), s5, tokenURI, testNow, lookupOf(a)); err != nil {
		t.Errorf("PKCS#1: %v", err)
	}
}

func TestSignAssertionBadKey(t *testing.T) {
	a, _ := testPairs(t)
	for name, key := range map[string]string{
		"empty":   "",
		"not PEM": "hello",
		"junk":    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"type":    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		c := a.creds
		c.PrivateKey = key
		_, err := credentials.SignAssertion(c, time.Minute, nil, testNow)
		if err == nil {
			t.Errorf("%s: signed", name)
		} else if strings.Contains(err.Error(), "AAAA") {
			t.Errorf("%s: error echoes the key: %v", name, err)
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	a, b := testPairs(t)
	lookup := lookupOf(a, b)
	rs := func(mod func(jwt.MapClaims)) string {
		c := claimsOf(a)
		mod(c)
		return sign(t, jwt.SigningMethodRS256, a.priv, c)
	}
	valid := rs(func(jwt.MapClaims) {})
	parts := strings.Split(valid, ".")

	// The classic confusion: the public key, as HMAC secret.
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: a.der})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	tamperedClaims := claimsOf(a)
	tamperedClaims["ctx"] = "admin"
	tp, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tp) + "." + parts[2]

	// The same signature spelled differently (non-zero padding bits).
	sig := []byte(parts[2])
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	sig[len(sig)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1]
	respelled := parts[0] + "." + parts[1] + "." + string(sig)

	critHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","crit":["x"],"x":1}`))
	critTok := critHeader + "." + parts[1]
	critSig, _ := jwt.SigningMethodRS256.Sign(critTok, a.priv)
	critTok += "." + base64.RawURLEncoding.EncodeToString(critSig)

	badSig := "signature does not verify"
	for _, c := range []struct {
		name, assertion, want string
	}{
		{"expired", rs(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Second).Unix() }), "expired"},
		{"expires now", rs(func(c jwt.MapClaims) { c["exp"] = testNow.Unix() }), "expired"},
		{"exp over 60 min", rs(func(c jwt.MapClaims) { c["exp"] = testNow.Add(61 * time.Minute).Unix() }), "more than 60 minutes"},
		{"no exp", rs(func(c jwt.MapClaims) { delete(c, "exp") }), `no "exp"`},
		{"exp a string", rs(func(c jwt.MapClaims) { c["exp"] = "soon" }), "not a well-formed JWT"},
		{"wrong aud", rs(func(c jwt.MapClaims) { c["aud"] = "https://other.example/token" }), `"aud"`},
		{"extra aud", rs(func(c jwt.MapClaims) { c["aud"] = []string{tokenURI, "https://other.example"} }), `"aud"`},
		{"no aud", rs(func(c jwt.MapClaims) { delete(c, "aud") }), `"aud"`},
		{"iss not sub", rs(func(c jwt.MapClaims) { c["sub"] = b.creds.ClientID }), "differ"},
		{"no iss", rs(func(c jwt.MapClaims) { delete(c, "iss") }), `"iss" and "sub"`},
		{"iss not owner", rs(func(c jwt.MapClaims) { c["iss"], c["sub"] = b.creds.ClientID, b.creds.ClientID }), "owns its key"},
		{"iat in future", rs(func(c jwt.MapClaims) { c["iat"] = testNow.Add(5 * time.Minute).Unix() }), `"iat"`},
		{"nbf in future", rs(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(5 * time.Minute).Unix() }), `"nbf"`},
		{"no key", rs(func(c jwt.MapClaims) { delete(c, "key") }), `no "key"`},
		{"unknown key", rs(func(c jwt.MapClaims) { c["key"] = credentials.NewClientID() }), badSig},
		{"huge key", rs(func(c jwt.MapClaims) { c["key"] = strings.Repeat("k", 1000) }), badSig},
		{"wrong key", sign(t, jwt.SigningMethodRS256, b.priv, claimsOf(a)), badSig},
		{"tampered payload", tampered, badSig},
		{"no signature", parts[0] + "." + parts[1] + ".", badSig},
		{"respelled signature", respelled, "not a well-formed JWT"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsOf(a)), "signed with RS256"},
		{"HS256 public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, claimsOf(a)), "signed with RS256"},
		{"HS256 public key DER", sign(t, jwt.SigningMethodHS256, a.der, claimsOf(a)), "signed with RS256"},
		{"RS512", sign(t, jwt.SigningMethodRS512, a.priv, claimsOf(a)), "signed with RS256"},
		{"PS256", sign(t, jwt.SigningMethodPS256, a.priv, claimsOf(a)), "signed with RS256"},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, claimsOf(a)), "signed with RS256"},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey, claimsOf(a)), "signed with RS256"},
		{"unknown alg", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX1"}`)) + "." + parts[1] + "." + parts[2], "signed with RS256"},
		{"no alg", base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], "signed with RS256"},
		{"crit", critTok, `"crit"`},
		{"empty", "", "empty"},
		{"garbage", "garbage", "not a well-formed JWT"},
		{"dots", "..", "not a well-formed JWT"},
		{"four parts", valid + ".x", "not a well-formed JWT"},
		{"padded", valid + "=", "not a well-formed JWT"},
		{"space", valid + " ", "not a well-formed JWT"},
		{"not json", "bm90.anNvbg.c2ln", "not a well-formed JWT"},
		{"too long", parts[0] + "." + strings.Repeat("A", 20000) + "." + parts[2], "longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims, err := credentials.VerifyAssertion(context.Background(), c.assertion, tokenURI, testNow, lookup)
			if err == nil {
				t.Fatalf("accepted: %+v", claims)
			}
			wantRefused(t, err, c.assertion, c.want)
		})
	}

	// Accepted at the edges: exp exactly 60 minutes ahead (and within the
	// skew beyond), iat a little ahead, iat and nbf in the past.
	for name, mod := range map[string]func(jwt.MapClaims){
		"exp 60 min":      func(c jwt.MapClaims) { c["exp"] = testNow.Add(60 * time.Minute).Unix() },
		"exp within skew": func(c jwt.MapClaims) { c["exp"] = testNow.Add(60*time.Minute + 10*time.Second).Unix() },
		"iat skewed":      func(c jwt.MapClaims) { c["iat"] = testNow.Add(10 * time.Second).Unix() },
		"iat past":        func(c jwt.MapClaims) { c["iat"] = testNow.Add(-time.Minute).Unix() },
		"nbf past":        func(c jwt.MapClaims) { c["nbf"] = testNow.Add(-time.Minute).Unix() },
	} {
		if _, err := credentials.VerifyAssertion(context.Background(), rs(mod), tokenURI, testNow, lookup); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// An unknown key and a wrong signature must be indistinguishable.
func TestUnknownKeyIsBadSignature(t *testing.T) {
	a, b := testPairs(t)
	message := func(assertion string, lookup credentials.PublicKeyLookup) string {
		_, err := credentials.VerifyAssertion(context.Background(), assertion, tokenURI, testNow, lookup)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != 401 {
			t.Fatalf("err = %v, want 401", err)
		}
		return ae.Message
	}
	wrongKey := message(sign(t, jwt.SigningMethodRS256, b.priv, claimsOf(a)), lookupOf(a))
	unknown := message(sign(t, jwt.SigningMethodRS256, a.priv, claimsOf(a)), lookupOf(b))
	as404 := message(sign(t, jwt.SigningMethodRS256, a.priv, claimsOf(a)), func(context.Context, string) (string, *rsa.PublicKey, error) {
		return "", nil, apierr.NotFound("no key")
	})
	nilKey := message(sign(t, jwt.SigningMethodRS256, a.priv, claimsOf(a)), func(context.Context, string) (string, *rsa.PublicKey, error) {
		return a.creds.ClientID, nil, nil
	})
	if wrongKey != unknown || unknown != as404 || as404 != nilKey {
		t.Errorf("messages differ:\n%s\n%s\n%s\n%s", wrongKey, unknown, as404, nilKey)
	}
}

// A failing lookup (database down) is not a refusal of the client.
func TestLookupError(t *testing.T) {
	a, _ := testPairs(t)
	boom := errors.New("connection refused to db.internal:5432")
	_, err := credentials.VerifyAssertion(context.Background(), sign(t, jwt.SigningMethodRS256, a.priv, claimsOf(a)), tokenURI, testNow,
		func(context.Context, string) (string, *rsa.PublicKey, error) { return "", nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the lookup's error", err)
	}
	if e := apierr.From(err); e.HTTPCode != 500 || strings.Contains(e.Message, "db.internal") {
		t.Errorf("client sees %d %q", e.HTTPCode, e.Message)
	}
	// An apierr the lookup returns (other than 404) reaches the client.
	_, err = credentials.VerifyAssertion(context.Background(), sign(t, jwt.SigningMethodRS256, a.priv, claimsOf(a)), tokenURI, testNow,
		func(context.Context, string) (string, *rsa.PublicKey, error) {
			return "", nil, apierr.Unavailable("db down")
		})
	if e := apierr.From(err); e.HTTPCode != 503 {
		t.Errorf("client sees %d %q, want 503", e.HTTPCode, e.Message)
	}
}

func TestVerifyNeedsTokenURI(t *testing.T) {
	a, _ := testPairs(t)
	s, _ := credentials.SignAssertion(a.creds, time.Minute, nil, testNow)
	if _, err := credentials.VerifyAssertion(context.Background(), s, "", testNow, lookupOf(a)); err == nil {
		t.Error("accepted with no token URI")
	}
}
