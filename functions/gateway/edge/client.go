package edge

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// ClientAddr is the client's IP address: the peer's, or, when the peer is
// one of the trusted proxies (the ingress), the last address in
// X-Forwarded-For that is not one.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !trustedProxy(trusted, addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !trustedProxy(trusted, hop) {
			return hop.String()
		}
	}
	return host
}

func trustedProxy(trusted []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
}
