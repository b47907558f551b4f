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

	"github.com/skyflow-oss/skyflow/shared/apierr"
	"github.com/skyflow-oss/skyflow/shared/credentials"
	"github.com/skyflow-oss/skyflow/shared/request"
	"github.com/skyflow-oss/skyflow/shared/signing"
)

// caller is an authenticated principal and, for an access token, its
// jti, which the deny list is asked about.
type caller struct {
	request.Principal
	jti string
}

// authenticate resolves the bearer credential, an access token or an API
// key, and checks that the principal may call the route. A revoked API
// key fails here; a revoked access token in checkDenied.
func (f *Function) authenticate(ctx context.Context, r *http.Request, route *Route) (caller, error) {
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
		c.Principal, err = f.keys.Authenticate(ctx, credential)
		kind = signing.KindServiceAccount
	} else {
		var claims *signing.Claims
		if claims, err = f.verifyToken(ctx, credential); err == nil {
			c = caller{request.Principal{ID: claims.Subject, Roles: claims.Roles}, claims.ID}
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

// checkDenied refuses an access token on the user service's deny list
// (logged out, or its session's refresh token reused).
func (f *Function) checkDenied(ctx context.Context, c caller) error {
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
