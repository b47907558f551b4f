// Package sender authenticates who sent an event to a function (SKY-ARCH-001
// by construction). Every event a function receives carries, in its HTTP
// Authorization header, a short-lived assertion signed by the sender: the
// gateway for client requests, the broker for trigger deliveries, the ping
// source for schedules. The assertion names its sender (iss), the one
// function it is for (aud), the event it covers (jti = the event id, and a
// digest of the whole event: attributes, extensions and data), and expires
// within seconds. A function refuses any event without a valid one, so a
// request that skipped the gateway fails even from inside the cluster, and
// a captured assertion cannot carry another principal, body or function.
//
// Senders sign with Ed25519 keys; functions trust the public keys named in
// SKYFLOW_TRUSTED_SENDERS ("gateway=<base64>,broker=<base64>,ping=<base64>").
// Only the gateway holds the gateway's private key (SKYFLOW_SENDER_KEY).
//
// In a cluster, Knative's broker and PingSource cannot sign with those keys;
// with Knative's OIDC delivery authentication they send instead a token of
// the cluster's service-account issuer, trusted through SKYFLOW_TRUSTED_OIDC
// (see ParseTrustedOIDC). Such a token names the dispatcher's service
// account (sub) and the function (aud), but not the event: it is not bound
// to the event's id, digest or principal, may live up to its exp (often an
// hour) and so can be replayed, to the same function, with other events.
// An event delivered that way is as trustworthy as whoever may publish to
// the broker; the event binding applies only to the Ed25519 assertions.
package sender

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// The senders.
const (
	Gateway = "gateway" // client requests, after authentication and authorization
	Broker  = "broker"  // events delivered by a Trigger
	Ping    = "ping"    // a PingSource's schedule
)

const (
	// TTL is an assertion's lifetime: it is checked when the event arrives,
	// and each delivery attempt is signed anew.
	TTL = 30 * time.Second
	// leeway is the clock skew tolerated between sender and function.
	leeway = 5 * time.Second
	alg    = "EdDSA"
)

// Claims of an assertion.
type Claims struct {
	jwt.RegisteredClaims        // iss = sender, aud = function, jti = event id, iat, exp
	Digest               string `json:"evd"`                 // base64url SHA-256 of the event (digest)
	Principal            string `json:"principal,omitempty"` // the client's principal, for the gateway's assertions
}

// Signer signs assertions as one sender.
type Signer struct {
	name string
	key  ed25519.PrivateKey
}

// NewSigner returns a signer for sender name with key.
func NewSigner(name string, key ed25519.PrivateKey) *Signer { return &Signer{name: name, key: key} }

// GenerateSigner makes a signer with a new key, for the local platform.
func GenerateSigner(name string) (*Signer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewSigner(name, key), nil
}

// ParseSigner reads a signer from a base64 Ed25519 seed (SKYFLOW_SENDER_KEY).
func ParseSigner(name, seed string) (*Signer, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(seed))
	if err != nil || len(raw) != ed25519.SeedSize {
		return nil, fmt.Errorf("the %s's sender key must be a base64 Ed25519 seed of %d bytes", name, ed25519.SeedSize)
	}
	return NewSigner(name, ed25519.NewKeyFromSeed(raw)), nil
}

// Name is the sender this signer signs as.
func (s *Signer) Name() string { return s.name }

// Seed is the private key's seed in base64, for handing to the sender's process.
func (s *Signer) Seed() string { return base64.StdEncoding.EncodeToString(s.key.Seed()) }

// PublicKey is the key functions trust, in base64.
func (s *Signer) PublicKey() string {
	return base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey))
}

// Sign returns an assertion that e comes from this sender, for function.
func (s *Signer) Sign(e event.Event, function string, now time.Time) (string, error) {
	digest, err := Digest(e)
	if err != nil {
		return "", err
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.name,
			Audience:  jwt.ClaimStrings{function},
			ID:        e.ID(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(TTL)),
		},
		Digest:    digest,
		Principal: extension(e, "principal"),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.name
	return t.SignedString(s.key)
}

// Authorize signs e for function and sets the request's Authorization header.
func (s *Signer) Authorize(r *http.Request, e event.Event, function string) error {
	token, err := s.Sign(e, function, time.Now())
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+token)
	return nil
}

// Verifier checks assertions against the trusted senders' public keys,
// and OIDC tokens against the trusted OIDC senders (TrustOIDC).
type Verifier struct {
	keys    map[string]ed25519.PublicKey
	oidc    []OIDCSender
	issuers map[string]*keySet // by issuer URL
}

// NewVerifier trusts the given signers' public keys (tests and the local platform).
func NewVerifier(signers ...*Signer) *Verifier {
	v := &Verifier{keys: map[string]ed25519.PublicKey{}}
	for _, s := range signers {
		v.keys[s.name] = s.key.Public().(ed25519.PublicKey)
	}
	return v
}

// ParseTrusted reads SKYFLOW_TRUSTED_SENDERS: name=<base64 public key>,…
func ParseTrusted(s string) (*Verifier, error) {
	v := &Verifier{keys: map[string]ed25519.PublicKey{}}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, key, ok := strings.Cut(entry, "=")
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
		if !ok || name == "" || err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trusted sender %q: want name=<base64 Ed25519 public key>", name)
		}
		v.keys[strings.TrimSpace(name)] = ed25519.PublicKey(raw)
	}
	if len(v.keys) == 0 {
		return nil, errors.New("no trusted senders: every event would be refused")
	}
	return v, nil
}

// Trusted lists the senders v trusts, as ParseTrusted reads them.
func (v *Verifier) Trusted() string {
	var out []string
	for name, key := range v.keys {
		out = append(out, name+"="+base64.StdEncoding.EncodeToString(key))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// ErrNoAssertion and the other errors of Verify say why an event is refused;
// none of them echoes the token.
var (
	ErrNoAssertion = errors.New("the event carries no sender assertion (Authorization: Bearer …); client requests go through the gateway")
	ErrInvalid     = errors.New("the event's sender assertion is not valid")
)

// Verify checks the Authorization header of an event delivered to function
// and returns the verified claims.
func (v *Verifier) Verify(authorization string, e event.Event, function string, now time.Time) (*Claims, error) {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || token == "" {
		return nil, ErrNoAssertion
	}
	if v == nil {
		return nil, fmt.Errorf("%w: no sender is trusted", ErrInvalid)
	}
	if v.isOIDC(token) {
		return v.verifyOIDC(token, function, now)
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		key, ok := v.keys[iss]
		if !ok {
			return nil, fmt.Errorf("untrusted sender")
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{alg}),
		jwt.WithAudience(function),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, reason(err))
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > TTL {
		return nil, fmt.Errorf("%w: it lives longer than %s", ErrInvalid, TTL)
	}
	digest, err := Digest(e)
	if err != nil || c.ID != e.ID() || c.Digest != digest || c.Principal != extension(e, "principal") {
		return nil, fmt.Errorf("%w: it was signed for another event", ErrInvalid)
	}
	return &c, nil
}

// reason names what failed without the token's content.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it has expired"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "it is for another function"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "its signature does not verify against a trusted sender"
	}
	return "it is malformed or not yet valid"
}

// Digest is the SHA-256 of everything the event says, length-prefixed
// field by field: id, source, type, subject, data content type, every
// extension (sorted by name) and the data.
func Digest(e event.Event) (string, error) {
	h := sha256.New()
	field := func(s []byte) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write(s)
	}
	for _, s := range []string{e.ID(), e.Source(), e.Type(), e.Subject(), e.DataContentType()} {
		field([]byte(s))
	}
	ext := e.Extensions()
	names := make([]string, 0, len(ext))
	for name := range ext {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		value, err := types.Format(ext[name])
		if err != nil {
			return "", fmt.Errorf("extension %s: %w", name, err)
		}
		field([]byte(name))
		field([]byte(value))
	}
	field(e.Data())
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}

func extension(e event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	s, _ := types.Format(v)
	return s
}

type contextKey struct{}

// NewContext returns ctx carrying the verified sender of the event being handled.
func NewContext(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, contextKey{}, name)
}

// From returns the verified sender of the event being handled, or "".
func From(ctx context.Context) string {
	s, _ := ctx.Value(contextKey{}).(string)
	return s
}

// Require checks that the event being handled came from one of the
// senders: a function accepts each event type only from the sender that
// may send it.
func Require(ctx context.Context, senders ...string) error {
	if slices.Contains(senders, From(ctx)) {
		return nil
	}
	return apierr.PermissionDenied("events of this type are accepted only from: %s", strings.Join(senders, ", "))
}
