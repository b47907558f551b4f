package signing

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// maxTokenLen bounds the work an attacker can make a verifier do; real
// tokens are a few hundred bytes.
const maxTokenLen = 8 << 10

// jwk is an Ed25519 public key as a JSON Web Key (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

// JWKS returns the JSON Web Key Set of every key still verifying, newest
// first, to serve at GET /.well-known/jwks.json. It reads the table rather
// than the cache, so a key another replica just made is published at once;
// gateways fetch the set rarely.
func (k *Keyring) JWKS(ctx context.Context) ([]byte, error) {
	rows, err := k.pool.Query(ctx, `SELECT kid, public_key FROM signing_keys
		WHERE alg = $1 AND verify_until > $2 ORDER BY created_at DESC, kid DESC`, Alg, k.o.Now())
	if err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	set := jwks{Keys: []jwk{}}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.kid, &r.pub); err != nil {
			rows.Close()
			return nil, fmt.Errorf("signing: read keys: %w", err)
		}
		key, err := publicOnly(r)
		if err != nil {
			rows.Close()
			return nil, err
		}
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(key.pub),
			Kid: key.kid, Alg: Alg, Use: "sig"})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	return json.Marshal(set)
}

// VerifyWithJWKS verifies token against a JWKS document as the gateway does
// with the set it fetched, by the same rules as [Keyring.Verify]: EdDSA only,
// a kid in the set, a good signature, iss == issuer and aud containing
// audience, exp (required) and nbf and iat within Leeway of now, and a jti
// and sub present. Keys in the set that are not Ed25519 signing keys are
// ignored. A bad token gives a 401 *apierr.Error; a bad set, a plain error.
func VerifyWithJWKS(jwksDoc []byte, token string, issuer, audience string, now time.Time) (*Claims, error) {
	keys, err := parseJWKS(jwksDoc)
	if err != nil {
		return nil, err
	}
	return verify(token, issuer, audience, now, func(kid string) (ed25519.PublicKey, error) {
		if pub, ok := keys[kid]; ok {
			return pub, nil
		}
		return nil, errUnknownKey
	})
}

func parseJWKS(doc []byte) (map[string]ed25519.PublicKey, error) {
	var set jwks
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("signing: JWKS: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, j := range set.Keys {
		if j.Kty != "OKP" || j.Crv != "Ed25519" || j.Kid == "" ||
			(j.Alg != "" && j.Alg != Alg) || (j.Use != "" && j.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signing: JWKS: key %q: x is not a base64url Ed25519 public key", j.Kid)
		}
		keys[j.Kid] = ed25519.PublicKey(x)
	}
	return keys, nil
}

// reasonError is a refusal decided while looking up the key; its reason is
// safe to show the client.
type reasonError struct{ reason string }

func (e *reasonError) Error() string { return e.reason }

var (
	errUnknownKey = &reasonError{"Access token signed with an unknown or retired key."}
	errNoKid      = &reasonError{"Access token has no key id."}
	errAlg        = &reasonError{"Access token algorithm not accepted."}
	errCrit       = &reasonError{"Access token has unsupported critical headers."}
)

// lookupError is a failure to read the keys: not the token's fault, so not a
// 401.
type lookupError struct{ err error }

func (e *lookupError) Error() string { return e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }

// verify holds the rules shared by Keyring.Verify and VerifyWithJWKS.
func verify(token, issuer, audience string, now time.Time, lookup func(kid string) (ed25519.PublicKey, error)) (*Claims, error) {
	if issuer == "" || audience == "" {
		return nil, errNotConfigured // would disable the iss or aud check
	}
	if token == "" {
		return nil, apierr.Unauthenticated("Access token missing.")
	}
	if len(token) > maxTokenLen {
		return nil, apierr.Unauthenticated("Access token too long.")
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{Alg}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	var c Claims
	t, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// Checked again though WithValidMethods did: the key returned
		// below must only ever meet Ed25519.
		if t.Method != jwt.SigningMethodEdDSA {
			return nil, errAlg
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit // RFC 7515 §4.1.11: unknown critical extensions must be refused
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKid
		}
		return lookup(kid)
	})
	if err != nil {
		return nil, refusal(t, err)
	}
	if c.ID == "" {
		return nil, apierr.Unauthenticated("Access token has no jti.")
	}
	if c.Subject == "" {
		return nil, apierr.Unauthenticated("Access token has no subject.")
	}
	return &c, nil
}

// refusal turns a parse failure into a short reason that never quotes the
// token, or passes a key lookup failure through.
func refusal(t *jwt.Token, err error) error {
	var le *lookupError
	if errors.As(err, &le) {
		return fmt.Errorf("signing: verify: %w", le.err)
	}
	var re *reasonError
	if errors.As(err, &re) {
		return apierr.Unauthenticated("%s", re.reason)
	}
	var reason string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "Access token malformed."
	case t != nil && t.Header["alg"] != Alg:
		reason = errAlg.reason // alg "none", HS256, RS256, unknown: refused before any key is used
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "Access token signature invalid."
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = "Access token expired."
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "Access token not yet valid."
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "Access token issuer not accepted."
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = "Access token audience not accepted."
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "Access token lacks a required claim."
	default:
		reason = "Access token invalid."
	}
	return apierr.Unauthenticated("%s", reason)
}
