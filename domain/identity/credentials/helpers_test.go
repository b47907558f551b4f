package credentials_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

const tokenURI = "https://vault.example.test/v1/auth/sa/oauth/token"

// testNow is a fixed clock, so signed seeds stay valid in fuzzing.
var testNow = time.Unix(1_800_000_000, 0)

// pair is a service account's credentials.json with its public key.
type pair struct {
	creds credentials.Credentials
	der   []byte
	pub   *rsa.PublicKey
	priv  *rsa.PrivateKey
}

// pairs are made once: RSA key generation is slow under -race.
var pairs = sync.OnceValues(func() ([2]pair, error) {
	var ps [2]pair
	for i := range ps {
		creds, der, err := credentials.NewKeyPair(credentials.NewClientID(), "test account", tokenURI)
		if err != nil {
			return ps, err
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return ps, err
		}
		block, _ := pem.Decode([]byte(creds.PrivateKey))
		if block == nil {
			return ps, errors.New("privateKey is not PEM")
		}
		pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return ps, err
		}
		ps[i] = pair{creds: creds, der: der, pub: k.(*rsa.PublicKey), priv: pk.(*rsa.PrivateKey)}
	}
	return ps, nil
})

func testPairs(t testing.TB) (a, b pair) {
	t.Helper()
	ps, err := pairs()
	if err != nil {
		t.Fatal(err)
	}
	return ps[0], ps[1]
}

// lookupOf finds the keys of the given pairs, as the caller's database
// would; any other key is ErrKeyNotFound.
func lookupOf(ps ...pair) credentials.PublicKeyLookup {
	return func(_ context.Context, keyID string) (string, *rsa.PublicKey, error) {
		for _, p := range ps {
			if p.creds.KeyID == keyID {
				return p.creds.ClientID, p.pub, nil
			}
		}
		return "", nil, credentials.ErrKeyNotFound
	}
}

// claimsOf are the claims an SDK signs for p, expiring in 30 minutes.
func claimsOf(p pair) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": p.creds.ClientID,
		"key": p.creds.KeyID,
		"aud": p.creds.TokenURI,
		"sub": p.creds.ClientID,
		"exp": testNow.Add(30 * time.Minute).Unix(),
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantRefused checks err is a 401 whose message contains want and does not
// echo the assertion.
func wantRefused(t testing.TB, err error, assertion, want string) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want a 401 *apierr.Error", err)
	}
	if ae.HTTPCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401 (%s)", ae.HTTPCode, ae.Message)
	}
	if !strings.Contains(ae.Message, want) {
		t.Errorf("message %q does not contain %q", ae.Message, want)
	}
	for _, part := range strings.Split(assertion, ".") {
		if len(part) >= 16 && strings.Contains(ae.Message, part) {
			t.Errorf("message %q echoes the assertion", ae.Message)
		}
	}
}
