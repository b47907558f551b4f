// Package edge is what the gateway checks before a request goes any
// further: who the caller is (an access token or an API key), whether its
// credential was revoked (the deny list), whether the route lets it in
// (roles, kind of principal), whether it is over its rate limit
// (ratelimit), where it comes from (behind trusted proxies), and which
// browser pages may call the API (CORS).
package edge

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/functions/gateway/routes"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Caller is an authenticated principal and, for an access token, its
// jti, which the deny list is asked about; for an API key answered from
// the gateway's cache, the key and when it was looked up, which the
// principal's change mark is checked against.
type Caller struct {
	request.Principal
	jti      string
	apiKey   string
	cachedAt time.Time
}

// ErrStaleKey says a cached API key's principal changed since it was
// cached (or that could not be checked): ask PostgreSQL again.
var ErrStaleKey = errors.New("the cached API key may be stale")

// Authenticator resolves a request's bearer credential, an access token
// or an API key, to its principal.
type Authenticator struct {
	tokens   *signing.Remote   // the access tokens' key set
	keys     *identity.Backend // API keys and the access-token deny list
	verified verifiedTokens
	apiKeys  apiKeyCache
}

// NewAuthenticator verifies access tokens against tokens, and looks API
// keys and revocations up in keys.
func NewAuthenticator(tokens *signing.Remote, keys *identity.Backend) *Authenticator {
	return &Authenticator{tokens: tokens, keys: keys}
}

// Authenticate resolves the bearer credential, an access token or an API
// key, and checks that the principal may call the route. A revoked API
// key fails here; a revoked access token in CheckDenied.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request, route *routes.Route) (Caller, error) {
	credential, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || credential == "" {
		return Caller{}, apierr.Unauthenticated("send a credential: Authorization: Bearer <access token or API key>")
	}
	var (
		c    Caller
		kind string
		err  error
	)
	if strings.HasPrefix(credential, credentials.APIKeyPrefix) {
		c, err = a.authenticateKey(ctx, credential)
		kind = signing.KindServiceAccount
	} else {
		var claims *signing.Claims
		if claims, err = a.verifyToken(ctx, credential); err == nil {
			c = Caller{Principal: request.Principal{ID: claims.Subject, Roles: claims.Roles}, jti: claims.ID}
			kind = claims.Kind
		}
	}
	if err != nil {
		return c, err
	}
	switch {
	case route.Kind != "" && route.Kind != kind:
		return c, apierr.PermissionDenied("%s is only for %s principals", route.Path, strings.ReplaceAll(route.Kind, "_", " "))
	case len(route.Roles) > 0 && !slices.ContainsFunc(route.Roles, c.Has):
		return c, apierr.PermissionDenied("%s %s needs one of the roles: %s", route.Method, route.Path, strings.Join(route.Roles, ", "))
	}
	return c, nil
}

// verifyToken checks an access token against the user service's key set.
// A verified token is remembered until it expires, so a client's next
// request costs a map lookup instead of a signature check.
func (a *Authenticator) verifyToken(ctx context.Context, token string) (*signing.Claims, error) {
	if c := a.verified.get(token, time.Now()); c != nil {
		return c, nil
	}
	c, err := a.tokens.Verify(ctx, token)
	if errors.Is(err, signing.ErrKeySetUnavailable) {
		return nil, apierr.Unavailable("access tokens cannot be verified right now; try again")
	}
	if err != nil {
		return nil, err
	}
	a.verified.put(token, c)
	return c, nil
}

// authenticateKey resolves an API key from the cache, or from PostgreSQL
// (one query) and caches it. The time of a lookup is taken before it, so
// a change marked while it ran is still seen as newer.
func (a *Authenticator) authenticateKey(ctx context.Context, key string) (Caller, error) {
	now := time.Now()
	if p, at, ok := a.apiKeys.get(key, now); ok {
		return Caller{Principal: p, apiKey: key, cachedAt: at}, nil
	}
	p, err := a.keys.Authenticate(ctx, key)
	if err != nil {
		return Caller{}, err
	}
	a.apiKeys.put(key, p, now)
	return Caller{Principal: p}, nil
}

// CheckDenied refuses an access token on the user service's deny list
// (logged out, or its session's refresh token reused), and says
// ErrStaleKey for a cached API key whose principal changed since.
func (a *Authenticator) CheckDenied(ctx context.Context, c Caller) error {
	if !c.cachedAt.IsZero() {
		changed, err := a.keys.ChangedSince(ctx, c.ID, c.cachedAt)
		if err != nil || changed {
			// Without Redis the mark cannot be read: fail to PostgreSQL,
			// never to the cache.
			a.apiKeys.drop(c.apiKey)
			return ErrStaleKey
		}
		return nil
	}
	if c.jti == "" {
		return nil
	}
	denied, err := a.keys.Denied(ctx, c.jti)
	if err != nil {
		// Fail closed: without the deny list a revoked token would pass.
		return apierr.Unavailable("access tokens cannot be checked for revocation right now; try again")
	}
	if denied {
		return apierr.Unauthenticated("the access token was revoked: log in again")
	}
	return nil
}

// verifiedTokens remembers verified access tokens by their SHA-256 until
// they expire; bounded, it forgets everything when full.
type verifiedTokens struct {
	mu     sync.Mutex
	claims map[[32]byte]*signing.Claims
}

const maxVerifiedTokens = 50_000

func (v *verifiedTokens) get(token string, now time.Time) *signing.Claims {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.claims[sha256.Sum256([]byte(token))]
	if c == nil || !now.Before(c.ExpiresAt.Time) {
		return nil
	}
	return c
}

func (v *verifiedTokens) put(token string, c *signing.Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.claims == nil || len(v.claims) >= maxVerifiedTokens {
		v.claims = map[[32]byte]*signing.Claims{}
	}
	v.claims[sha256.Sum256([]byte(token))] = c
}

// apiKeyCache remembers API keys resolved from PostgreSQL, by SHA-256,
// for at most identity.APIKeyCacheTTL; each use also checks the
// principal's change mark in Redis, so a revocation or a change of roles
// takes effect at once on every replica. Bounded, it forgets everything
// when full.
type apiKeyCache struct {
	mu   sync.Mutex
	keys map[[32]byte]cachedKey
}

type cachedKey struct {
	principal request.Principal
	at        time.Time
}

const maxCachedAPIKeys = 10_000

func (c *apiKeyCache) get(key string, now time.Time) (request.Principal, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[sha256.Sum256([]byte(key))]
	if !ok || now.Sub(k.at) >= identity.APIKeyCacheTTL {
		return request.Principal{}, time.Time{}, false
	}
	return k.principal, k.at, true
}

func (c *apiKeyCache) put(key string, p request.Principal, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= maxCachedAPIKeys {
		c.keys = map[[32]byte]cachedKey{}
	}
	c.keys[sha256.Sum256([]byte(key))] = cachedKey{p, at}
}

func (c *apiKeyCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.keys, sha256.Sum256([]byte(key)))
}
