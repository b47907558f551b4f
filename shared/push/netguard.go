package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Networks are the networks push endpoints may be in although they are
// not public: SKYFLOW_PUSH_ALLOWED_NETWORKS, CIDR prefixes or addresses
// separated by commas or spaces (for a push service reached over a private
// network, and for tests). Every other non-public address is refused, at
// subscription for an address literal and at every connection for what a
// name resolves to, so a subscription cannot make Skyflow call into its
// own network (SSRF), DNS rebinding included.
type Networks []netip.Prefix

// ParseNetworks reads SKYFLOW_PUSH_ALLOWED_NETWORKS.
func ParseNetworks(s string) (Networks, error) {
	var out Networks
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix (10.0.0.0/8) or an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// nonPublic are the ranges that are not the public Internet beyond what
// netip.Addr's predicates cover: shared address space (CGNAT), the IETF
// protocol assignments, the documentation and benchmarking ranges, the
// reserved class E, and NAT64 (whose embedded IPv4 address could be any).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4: embeds an IPv4 address
}

// Public reports whether a is an address of the public Internet.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Allows reports whether Skyflow may connect to a: a public address, or
// one in the allowed networks.
func (n Networks) Allows(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range n {
		if p.Contains(a) {
			return true
		}
	}
	return Public(a)
}

// errRefusedAddress is a connection refused by the guard.
var errRefusedAddress = errors.New("the push endpoint's address is not public (SKYFLOW_PUSH_ALLOWED_NETWORKS)")

// IsRefusedAddress reports whether err is the guard refusing an address.
func IsRefusedAddress(err error) bool { return errors.Is(err, errRefusedAddress) }

// Client is the HTTP client for push services: every connection's
// address is checked against n (after name resolution), no proxy (it
// would hide the address), no redirects (a push service answers itself),
// TLS 1.2 or later against roots (nil: the system's).
func (n Networks) Client(roots *x509.CertPool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !n.Allows(ap.Addr()) {
				return errRefusedAddress
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 10,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
