// Package signing holds the user service's token signing keys and issues and
// verifies Skyflow access tokens: JWTs signed with EdDSA (Ed25519) that the
// gateway verifies against the published key set, GET /.well-known/jwks.json.
//
// Keys live in the signing_keys table, shared by every replica of the user
// service. A key signs for [Options.RotateEvery] and then verifies until the
// last token it can have signed has expired, so rotation never cuts off a
// live session. Private keys are stored wrapped by the key-encryption key and
// are unwrapped only in memory, only for the key that currently signs.
//
// Verification accepts EdDSA and nothing else: with the algorithm pinned, a
// token cannot pick a weaker one (alg "none") or turn the public key into an
// HMAC secret (algorithm confusion).
package signing

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
)

// Alg is the only JWS algorithm issued and accepted.
const Alg = "EdDSA"

// Kinds of principal an access token is issued to.
const (
	KindUser           = "user"
	KindServiceAccount = "service_account"
)

const (
	// DefaultTTL is a user access token's lifetime when none is given:
	// short, because an access token cannot be revoked before it expires.
	DefaultTTL = 15 * time.Minute
	// MaxUserTTL bounds a user's access token; users refresh instead.
	MaxUserTTL = 15 * time.Minute
	// MaxTTL bounds any access token (service accounts may use it). Keys
	// verify for this long after they stop signing, so it must not grow
	// without moving verify_until of existing keys.
	MaxTTL = 60 * time.Minute
	// DefaultRotateEvery is how long a key signs before a new one is made.
	DefaultRotateEvery = 24 * time.Hour
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second

	// signSlack lets a key that is due for rotation keep signing for a
	// while if making its successor fails, rather than failing log in.
	signSlack = 10 * time.Minute
	// verifySkew keeps a key verifying a little past the expiry of its last
	// token, for verifiers whose clocks are behind.
	verifySkew = 5 * time.Minute
)

// Claims of a Skyflow access token.
type Claims struct {
	// iss, sub ("user:<uuid>" or "sa:<client id>"), aud, exp, nbf, iat,
	// jti (a UUID).
	jwt.RegisteredClaims
	Roles []string `json:"roles"`
	// Ctx is a service account's ctx claim, carried through unchanged.
	Ctx any `json:"ctx,omitempty"`
	// Kind is KindUser or KindServiceAccount.
	Kind string `json:"kind"`
}

// Options configure a [Keyring].
type Options struct {
	Issuer   string // iss of issued tokens and the only one accepted, e.g. "https://skyflow.local"
	Audience string // aud of issued tokens and the only one accepted, e.g. "skyflow-api"
	// TTL is the lifetime of tokens issued without one (default DefaultTTL).
	TTL time.Duration
	// RotateEvery is the age at which Issue makes a new signing key
	// (default DefaultRotateEvery).
	RotateEvery time.Duration
	// Now is the clock for token and key times (default time.Now); tests
	// move it. Cache ages use the real clock.
	Now func() time.Time
}

// Keyring signs and verifies access tokens with the keys in signing_keys.
// It is safe for concurrent use, and several processes may share the table.
type Keyring struct {
	pool *pgxpool.Pool
	kek  kek.KEK
	o    Options

	// st is the current immutable snapshot of the keys; readers load it
	// without locking.
	st atomic.Pointer[state]
	// sem serializes loads and key creation in this process, so a burst of
	// requests makes one query, not one each. A channel so waiting honours
	// the context.
	sem chan struct{}
}

// NewKeyring returns a Keyring on pool's signing_keys, wrapping private keys
// with k. It does no I/O: keys are read, or the first one made, on first use.
// Issuer and Audience must be set; Issue and Verify fail otherwise, since an
// empty expected issuer or audience would disable those checks.
func NewKeyring(pool *pgxpool.Pool, k kek.KEK, o Options) *Keyring {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.RotateEvery <= 0 {
		o.RotateEvery = DefaultRotateEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Keyring{pool: pool, kek: k, o: o, sem: make(chan struct{}, 1)}
}

var errNotConfigured = errors.New("signing: Options.Issuer and Options.Audience must be set")

// Issue signs c with the current key, filling iss, aud, iat, nbf, exp
// (now+ttl; ttl 0 means Options.TTL) and a fresh jti; the claims signed are
// returned. c must have a subject and a known kind; user tokens live at most
// MaxUserTTL, others at most MaxTTL.
//
// When there is no usable key, or the current one is older than
// RotateEvery, Issue makes one first, under a PostgreSQL advisory lock so
// that replicas racing to rotate make one key between them.
func (k *Keyring) Issue(ctx context.Context, c Claims, ttl time.Duration) (string, Claims, error) {
	if k.o.Issuer == "" || k.o.Audience == "" {
		return "", Claims{}, errNotConfigured
	}
	if ttl == 0 {
		ttl = k.o.TTL
	}
	if err := checkIssue(c, ttl); err != nil {
		return "", Claims{}, err
	}
	now := k.o.Now()
	key, err := k.signingKey(ctx, now)
	if err != nil {
		return "", Claims{}, err
	}
	c.Issuer = k.o.Issuer
	c.Audience = jwt.ClaimStrings{k.o.Audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = c.IssuedAt
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	c.ID = uuid.NewString()

	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = key.kid
	token, err := t.SignedString(key.priv)
	if err != nil {
		return "", Claims{}, fmt.Errorf("signing: sign with key %s: %w", key.kid, err)
	}
	return token, c, nil
}

// checkIssue refuses claims the gateway could not make sense of, and
// lifetimes longer than keys are kept verifying for.
func checkIssue(c Claims, ttl time.Duration) error {
	var prefix, maxTTL = "", MaxTTL
	switch c.Kind {
	case KindUser:
		prefix, maxTTL = "user:", MaxUserTTL
	case KindServiceAccount:
		prefix = "sa:"
	default:
		return fmt.Errorf("signing: claims kind %q is neither %q nor %q", c.Kind, KindUser, KindServiceAccount)
	}
	if !strings.HasPrefix(c.Subject, prefix) || len(c.Subject) == len(prefix) {
		return fmt.Errorf("signing: a %s token's subject must be %q followed by an id", c.Kind, prefix)
	}
	if ttl < 0 || ttl > maxTTL {
		return fmt.Errorf("signing: a %s token's lifetime must be positive and at most %s, not %s", c.Kind, maxTTL, ttl)
	}
	return nil
}

// Rotate makes a new signing key now, which signs from then on; older keys
// keep verifying until their verify_until, so issued tokens stay valid.
func (k *Keyring) Rotate(ctx context.Context) (kid string, err error) {
	key, err := k.ensure(ctx, k.o.Now(), true)
	if err != nil {
		return "", err
	}
	return key.kid, nil
}

// Verify checks a token as the gateway will (see [VerifyWithJWKS]), with the
// keys in the table that are still verifying. A token that fails is
// answered with a 401 *apierr.Error giving a short reason; any other error
// (the database unreachable) is not the client's fault and is not an
// *apierr.Error.
func (k *Keyring) Verify(ctx context.Context, token string) (*Claims, error) {
	now := k.o.Now()
	return verify(token, k.o.Issuer, k.o.Audience, now, func(kid string) (ed25519.PublicKey, error) {
		return k.publicKey(ctx, kid, now)
	})
}
