package credentials

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

const (
	// MaxAssertionLifetime bounds exp: an assertion is a bearer credential,
	// so a stolen one must not stay useful for long, and ReplayGuard must
	// remember each one until it expires.
	MaxAssertionLifetime = 60 * time.Minute
	// ClockSkew is how far the signer's clock may run ahead of ours (for
	// exp, iat and nbf), and how long ReplayGuard remembers an assertion
	// past its exp so that gateways whose clocks differ by up to this much
	// cannot be played against each other.
	ClockSkew = 30 * time.Second

	// maxAssertionBytes bounds the work (and the Redis key material) a
	// single request can cause; a Skyflow assertion is well under 2 KiB.
	maxAssertionBytes = 16 << 10
	// maxKeyIDBytes bounds what reaches the caller's database lookup.
	maxKeyIDBytes = 256
)

// AssertionClaims are the claims of a service account's assertion: iss and
// sub are the clientID, key the keyID, aud the token URI, exp at most
// MaxAssertionLifetime ahead, and ctx an optional context the SDK passes
// through to the access token.
type AssertionClaims struct {
	jwt.RegisteredClaims
	Key string `json:"key"`
	Ctx any    `json:"ctx,omitempty"`
}

// PublicKeyLookup finds a service-account key by its keyID, returning the
// client id that owns it and its public key. A key that does not exist or
// was revoked is ErrKeyNotFound (or an *apierr.Error with status 404);
// any other error is passed through as a failure of the lookup itself.
type PublicKeyLookup func(ctx context.Context, keyID string) (clientID string, pub *rsa.PublicKey, err error)

// ErrKeyNotFound is what a PublicKeyLookup returns for an unknown or
// revoked key.
var ErrKeyNotFound = errors.New("credentials: no such service-account key")

// Messages of refusals. An unknown key and a bad signature share one, so
// that keyIDs cannot be probed without the private key.
const (
	msgRS256        = "the assertion must be signed with RS256"
	msgMalformed    = "the assertion is not a well-formed JWT: it must be three base64url parts (header, claims, signature) joined by dots, with JSON header and claims of the standard types"
	msgBadSignature = "the assertion's signature does not verify with the key named by its \"key\" claim; sign it with the privateKey from the same credentials.json as that keyID (if the key was revoked, create new credentials)"
)

// parser only decodes: the signature and every claim are checked by
// VerifyAssertion itself, in an order and with messages of its own. Strict
// base64 leaves exactly one spelling of each signature, so an assertion
// cannot be respelled to slip past ReplayGuard.
var parser = jwt.NewParser(jwt.WithStrictDecoding(), jwt.WithoutClaimsValidation())

// VerifyAssertion checks a service account's signed JWT assertion as API.md
// describes and returns its claims. It refuses (401) an assertion that is not
// RS256 — "none", HS* (which would let the public key act as a shared
// secret), ES* and EdDSA alike — whose key is unknown or whose signature does
// not verify (one message for both), whose iss and sub are not the client
// that owns the key, whose aud is not tokenURI, whose exp is missing, past,
// or more than MaxAssertionLifetime (plus ClockSkew) ahead of now, or whose
// iat or nbf is in the future. The signature is checked before any claim, so
// without the private key nothing but "bad signature" can be learnt.
//
// It does not stop replays: pass the result to ReplayGuard.Use.
func VerifyAssertion(ctx context.Context, assertion, tokenURI string, now time.Time, lookup PublicKeyLookup) (*AssertionClaims, error) {
	if tokenURI == "" || lookup == nil {
		return nil, errors.New("credentials: VerifyAssertion needs the token URI and a key lookup")
	}
	if assertion == "" {
		return nil, apierr.Unauthenticated("the assertion is empty; sign one with the privateKey of credentials.json")
	}
	if len(assertion) > maxAssertionBytes {
		return nil, apierr.Unauthenticated("the assertion is longer than %d bytes; keep its ctx claim small", maxAssertionBytes)
	}
	claims := new(AssertionClaims)
	tok, parts, err := parser.ParseUnverified(assertion, claims)
	if err != nil {
		if tok != nil && tok.Header != nil && tok.Header["alg"] != "RS256" {
			return nil, apierr.Unauthenticated(msgRS256)
		}
		return nil, apierr.Unauthenticated(msgMalformed)
	}
	if tok.Method != jwt.SigningMethodRS256 || tok.Header["alg"] != "RS256" {
		return nil, apierr.Unauthenticated(msgRS256)
	}
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions the verifier does not understand
		// must make it refuse.
		return nil, apierr.Unauthenticated("the assertion's header lists \"crit\" extensions, which are not supported; leave crit out")
	}
	if claims.Key == "" {
		return nil, apierr.Unauthenticated("the assertion has no \"key\" claim; set it to the keyID from credentials.json")
	}

	// The signature, before any claim is believed.
	signed := parts[0] + "." + parts[1]
	var owner string
	var pub *rsa.PublicKey
	if len(claims.Key) <= maxKeyIDBytes {
		owner, pub, err = lookup(ctx, claims.Key)
	} else {
		err = ErrKeyNotFound
	}
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("credentials: look up service-account key: %w", err)
	}
	if err != nil || pub == nil {
		// Spend the time a verification takes, so an unknown key does not
		// answer measurably faster than a known one.
		_ = jwt.SigningMethodRS256.Verify(signed, tok.Signature, decoyKey)
		return nil, apierr.Unauthenticated(msgBadSignature)
	}
	if jwt.SigningMethodRS256.Verify(signed, tok.Signature, pub) != nil {
		return nil, apierr.Unauthenticated(msgBadSignature)
	}

	// The claims, now known to come from the key's holder.
	switch {
	case claims.Issuer == "" || claims.Subject == "":
		return nil, apierr.Unauthenticated("the assertion needs \"iss\" and \"sub\" claims; set both to the clientID from credentials.json")
	case claims.Issuer != claims.Subject:
		return nil, apierr.Unauthenticated("the assertion's \"iss\" and \"sub\" claims differ; set both to the clientID from credentials.json")
	case claims.Issuer != owner:
		return nil, apierr.Unauthenticated("the assertion's \"iss\" is not the service account that owns its key; use the clientID and keyID from the same credentials.json")
	case len(claims.Audience) != 1 || claims.Audience[0] != tokenURI:
		return nil, apierr.Unauthenticated("the assertion's \"aud\" claim must be the token URI %q (tokenURI in credentials.json)", tokenURI)
	case claims.ExpiresAt == nil:
		return nil, apierr.Unauthenticated("the assertion has no \"exp\" claim; set it to at most 60 minutes from now")
	case !now.Before(claims.ExpiresAt.Time):
		return nil, apierr.Unauthenticated("the assertion expired at %s; sign a new one", claims.ExpiresAt.UTC().Format(time.RFC3339))
	case claims.ExpiresAt.After(now.Add(MaxAssertionLifetime + ClockSkew)):
		return nil, apierr.Unauthenticated("the assertion's \"exp\" is more than 60 minutes from now; set it to at most 60 minutes ahead")
	case claims.IssuedAt != nil && claims.IssuedAt.After(now.Add(ClockSkew)):
		return nil, apierr.Unauthenticated("the assertion's \"iat\" is in the future; check the clock of the machine that signed it")
	case claims.NotBefore != nil && claims.NotBefore.After(now.Add(ClockSkew)):
		return nil, apierr.Unauthenticated("the assertion is not valid yet (\"nbf\" is in the future); check the clock of the machine that signed it")
	}
	return claims, nil
}

// isNotFound reports whether a lookup error means "no such key".
func isNotFound(err error) bool {
	var ae *apierr.Error
	return errors.Is(err, ErrKeyNotFound) || errors.As(err, &ae) && ae.HTTPCode == http.StatusNotFound
}

// decoyKey is verified against when the key is unknown. It is no real key
// (nothing verifies under it); it only has to cost what a real one does.
var decoyKey = func() *rsa.PublicKey {
	n := make([]byte, KeyBits/8)
	for i := 0; i < len(n); i += sha256.Size {
		s := sha256.Sum256([]byte{'d', 'e', 'c', 'o', 'y', byte(i)})
		copy(n[i:], s[:])
	}
	n[0] |= 0x80
	n[len(n)-1] |= 1
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
}()

// SignAssertion signs an assertion the way Skyflow SDKs do, for tests, the
// CLI and benchmarks: RS256 over iss = sub = ClientID, key = KeyID, aud =
// TokenURI (a string, not an array), exp = now + ttl (whole seconds) and
// ctx when not nil. Unlike the SDKs it adds a random jti: RS256 signatures
// are deterministic, so without one two assertions signed in the same
// second would be the same string, and ReplayGuard would refuse the second.
func SignAssertion(c Credentials, ttl time.Duration, ctx any, now time.Time) (string, error) {
	priv, err := privateKey(c.PrivateKey)
	if err != nil {
		return "", err
	}
	claims := jwt.MapClaims{
		"iss": c.ClientID,
		"key": c.KeyID,
		"aud": c.TokenURI,
		"sub": c.ClientID,
		"exp": now.Add(ttl).Unix(),
		"jti": uuid.NewString(),
	}
	if ctx != nil {
		claims["ctx"] = ctx
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("credentials: sign assertion: %w", err)
	}
	return s, nil
}
