package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/netip"
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

// caller is an authenticated principal and, for an access token, its
// jti, which the deny list is asked about; for an API key answered from
// the gateway's cache, the key and when it was looked up, which the
// principal's change mark is checked against.
type caller struct {
	request.Principal
	jti      string
	apiKey   string
	cachedAt time.Time
}

// errStaleKey says a cached API key's principal changed since it was
// cached (or that could not be checked): ask PostgreSQL again.
var errStaleKey = errors.New("the cached API key may be stale")

// authenticate resolves the bearer credential, an access token or an API
// key, and checks that the principal may call the route. A revoked API
// key fails here; a revoked access token in checkDenied.
func (f *Function) authenticate(ctx context.Context, r *http.Request, route *routes.Route) (caller, error) {
	credential, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || credential == "" {
		return caller{}, apierr.Unauthenticated("send a credential: Authorization: Bearer <access token or API key>")
	}
	var (
		c    caller
		kind string
		err  error
	)
	if strings.HasPrefix(credential, credentials.APIKeyPrefix) {
		c, err = f.authenticateKey(ctx, credential)
		kind = signing.KindServiceAccount
	} else {
		var claims *signing.Claims
		if claims, err = f.verifyToken(ctx, credential); err == nil {
			c = caller{Principal: request.Principal{ID: claims.Subject, Roles: claims.Roles}, jti: claims.ID}
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
func (f *Function) verifyToken(ctx context.Context, token string) (*signing.Claims, error) {
	if c := f.verified.get(token, time.Now()); c != nil {
		return c, nil
	}
	c, err := f.tokens.Verify(ctx, token)
	if errors.Is(err, signing.ErrKeySetUnavailable) {
		return nil, apierr.Unavailable("access tokens cannot be verified right now; try again")
	}
	if err != nil {
		return nil, err
	}
	f.verified.put(token, c)
	return c, nil
}

// authenticateKey resolves an API key from the cache, or from PostgreSQL
// (one query) and caches it. The time of a lookup is taken before it, so
// a change marked while it ran is still seen as newer.
func (f *Function) authenticateKey(ctx context.Context, key string) (caller, error) {
	now := time.Now()
	if p, at, ok := f.apiKeys.get(key, now); ok {
		return caller{Principal: p, apiKey: key, cachedAt: at}, nil
	}
	p, err := f.keys.Authenticate(ctx, key)
	if err != nil {
		return caller{}, err
	}
	f.apiKeys.put(key, p, now)
	return caller{Principal: p}, nil
}

// checkDenied refuses an access token on the user service's deny list
// (logged out, or its session's refresh token reused), and says
// errStaleKey for a cached API key whose principal changed since.
func (f *Function) checkDenied(ctx context.Context, c caller) error {
	if !c.cachedAt.IsZero() {
		changed, err := f.keys.ChangedSince(ctx, c.ID, c.cachedAt)
		if err != nil || changed {
			// Without Redis the mark cannot be read: fail to PostgreSQL,
			// never to the cache.
			f.apiKeys.drop(c.apiKey)
			return errStaleKey
		}
		return nil
	}
	if c.jti == "" {
		return nil
	}
	denied, err := f.keys.Denied(ctx, c.jti)
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

// clientAddr is the client's IP address: the peer's, or, when the peer is
// a trusted proxy (the ingress), the last address in X-Forwarded-For that
// is not one.
func (f *Function) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !f.trustedProxy(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !f.trustedProxy(hop) {
			return hop.String()
		}
	}
	return host
}

func (f *Function) trustedProxy(a netip.Addr) bool {
	return slices.ContainsFunc(f.settings.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
}
