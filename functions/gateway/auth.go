package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/skyflow-oss/skyflow/shared/apierr"
	"github.com/skyflow-oss/skyflow/shared/credentials"
	"github.com/skyflow-oss/skyflow/shared/request"
	"github.com/skyflow-oss/skyflow/shared/signing"
)

// authenticate resolves the bearer credential, an access token or an API
// key, and checks that the principal may call the route.
func (f *Function) authenticate(ctx context.Context, r *http.Request, route *Route) (request.Principal, error) {
	credential, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || credential == "" {
		return request.Principal{}, apierr.Unauthenticated("send a credential: Authorization: Bearer <access token or API key>")
	}
	var (
		p    request.Principal
		kind string
		err  error
	)
	if strings.HasPrefix(credential, credentials.APIKeyPrefix) {
		p, err = f.keys.Authenticate(ctx, credential)
		kind = signing.KindServiceAccount
	} else {
		p, kind, err = f.verifyToken(ctx, credential)
	}
	if err != nil {
		return p, err
	}
	switch {
	case route.Kind != "" && route.Kind != kind:
		return p, apierr.PermissionDenied("%s is only for %s principals", route.Path, strings.ReplaceAll(route.Kind, "_", " "))
	case len(route.Roles) > 0 && !slices.ContainsFunc(route.Roles, p.Has):
		return p, apierr.PermissionDenied("%s %s needs one of the roles: %s", route.Method, route.Path, strings.Join(route.Roles, ", "))
	}
	return p, nil
}

// verifyToken checks an access token against the user service's key set
// and the deny list of revoked tokens.
func (f *Function) verifyToken(ctx context.Context, token string) (request.Principal, string, error) {
	c, err := f.tokens.Verify(ctx, token)
	if errors.Is(err, signing.ErrKeySetUnavailable) {
		return request.Principal{}, "", apierr.Unavailable("access tokens cannot be verified right now; try again")
	}
	if err != nil {
		return request.Principal{}, "", err
	}
	denied, err := f.keys.Denied(ctx, c.ID)
	if err != nil {
		// Fail closed: without the deny list a revoked token would pass.
		return request.Principal{}, "", apierr.Unavailable("access tokens cannot be checked for revocation right now; try again")
	}
	if denied {
		return request.Principal{}, "", apierr.Unauthenticated("the access token was revoked: log in again")
	}
	return request.Principal{ID: c.Subject, Roles: c.Roles}, c.Kind, nil
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
