package credentials_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
)

// FuzzVerifyAssertion: no input panics, and none is accepted that the key
// did not sign. The fuzzer cannot forge RS256, so the only acceptable
// inputs are the signed seeds themselves, byte for byte: anything else
// accepted would be a respelling that slips past ReplayGuard, or worse.
func FuzzVerifyAssertion(f *testing.F) {
	a, b := testPairs(f)
	signed := map[string]bool{}
	add := func(s string) {
		signed[s] = true
		f.Add(s)
	}
	s, err := credentials.SignAssertion(a.creds, 30*time.Minute, map[string]any{"k": "v"}, testNow)
	if err != nil {
		f.Fatal(err)
	}
	add(s)
	add(sign(f, jwt.SigningMethodRS256, a.priv, claimsOf(a)))
	f.Add(sign(f, jwt.SigningMethodRS256, b.priv, claimsOf(a)))
	f.Add(sign(f, jwt.SigningMethodHS256, a.der, claimsOf(a)))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsOf(a)))
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9.e30.")

	lookup := lookupOf(a)
	f.Fuzz(func(t *testing.T, assertion string) {
		c, err := credentials.VerifyAssertion(context.Background(), assertion, tokenURI, testNow, lookup)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		if !signed[assertion] {
			t.Fatalf("accepted an assertion that was never signed: %q", assertion)
		}
		// And independently of the jwt library: the signature verifies.
		parts := strings.Split(assertion, ".")
		sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
		if err != nil || !bytes.Equal([]byte(base64.RawURLEncoding.EncodeToString(sig)), []byte(parts[2])) {
			t.Fatal("accepted a non-canonical signature")
		}
		h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(a.pub, crypto.SHA256, h[:], sig) != nil {
			t.Fatal("accepted a signature that does not verify")
		}
	})
}

// FuzzHashAPIKey: no input panics; a hash comes back exactly for strings
// shaped like a key, and is their SHA-256.
func FuzzHashAPIKey(f *testing.F) {
	k, _, _ := credentials.NewAPIKey()
	for _, s := range []string{k, "", "sky-", k[:41], k + "x", "SKY-" + k[4:], k[:41] + "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := credentials.HashAPIKey(s)
		looks := credentials.LooksLikeAPIKey(s)
		if (err == nil) != looks {
			t.Fatalf("HashAPIKey err = %v but LooksLikeAPIKey = %v", err, looks)
		}
		if err != nil {
			if len(s) > 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("error echoes the input: %v", err)
			}
			return
		}
		if len(s) != credentials.APIKeyLength || !strings.HasPrefix(s, credentials.APIKeyPrefix) {
			t.Fatalf("accepted %q", s)
		}
		if want := sha256.Sum256([]byte(s)); !bytes.Equal(h, want[:]) {
			t.Fatal("hash is not SHA-256")
		}
	})
}
