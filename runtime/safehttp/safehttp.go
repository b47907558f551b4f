// Package safehttp makes outbound HTTP requests to addresses that someone
// outside the platform chose (webhook endpoints) without letting them reach
// inside it (SSRF): webhook endpoints and Web Push endpoints share it, so
// there is one address policy to keep right. A [Policy] refuses loopback, link-local (the cloud
// metadata service 169.254.169.254 among them), private, shared (CGNAT),
// unspecified, multicast, broadcast and reserved addresses, in IPv4, IPv6
// and the IPv6 forms that carry an IPv4 address (IPv4-mapped,
// IPv4-compatible, NAT64, 6to4), the metadata service's names, localhost
// names and numeric host forms that resolvers read as IPv4 addresses, unless
// the deployment allows a network explicitly (SKYFLOW_WEBHOOK_ALLOWED_NETWORKS,
// SKYFLOW_PUSH_ALLOWED_NETWORKS).
//
// The check runs twice: when a URL is accepted ([Policy.CheckHost]: the
// host is resolved and every address it resolves to must be allowed; or
// [Policy.CheckHostNoLookup] where accepting must not wait on DNS), and at
// every connection,
// on the address actually dialled ([Policy.Control] on the net.Dialer), so a
// name that resolves elsewhere by the time of the request (DNS rebinding)
// cannot get through. The [Policy.Client] follows no redirects and uses no
// proxy, so neither a 3xx nor HTTP_PROXY can route a request around the
// check.
package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// ErrRefused is wrapped by every error for an address or name the policy
// refuses.
var ErrRefused = errors.New("refused by the outbound address policy")

// RefusedError says which address was refused and why; it never carries a
// URL (URLs may hold credentials).
type RefusedError struct {
	Host   string // the name or address checked
	Reason string // e.g. "a private address (10.0.0.0/8)"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s is %s: %v", e.Host, e.Reason, ErrRefused)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// blocked are the networks refused unless allowed, with why. IPv4-mapped
// and other embedded IPv4 forms are unwrapped before the check (see
// embeddedIPv4), so they meet the IPv4 rows.
var blocked = func() []struct {
	prefix netip.Prefix
	why    string
} {
	rows := []struct{ cidr, why string }{
		{"0.0.0.0/8", "an unspecified (\"this network\") address"},
		{"10.0.0.0/8", "a private address"},
		{"100.64.0.0/10", "a shared (carrier-grade NAT) address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address (the cloud metadata service lives here)"},
		{"172.16.0.0/12", "a private address"},
		{"192.0.0.0/24", "an IETF protocol address"},
		{"192.0.2.0/24", "a documentation address"},
		{"192.88.99.0/24", "a 6to4 relay address"},
		{"192.168.0.0/16", "a private address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"198.51.100.0/24", "a documentation address"},
		{"203.0.113.0/24", "a documentation address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved or broadcast address"},
		{"::/128", "the unspecified address"},
		{"::1/128", "a loopback address"},
		{"100::/64", "a discard-only address"},
		{"2001::/32", "a Teredo tunnel address"},
		{"2001:db8::/32", "a documentation address"},
		// Local-use NAT64 (RFC 8215): the operator's prefix length (/48 to
		// /96) decides where the IPv4 address sits, so it cannot be read
		// out reliably; refuse the whole range rather than guess.
		{"64:ff9b:1::/48", "a local-use NAT64 address"},
		{"fc00::/7", "a private (unique local) address"},
		{"fe80::/10", "a link-local address"},
		{"fec0::/10", "a site-local address"},
		{"ff00::/8", "a multicast address"},
	}
	out := make([]struct {
		prefix netip.Prefix
		why    string
	}, len(rows))
	for i, r := range rows {
		out[i].prefix = netip.MustParsePrefix(r.cidr)
		out[i].why = r.why + " (" + r.cidr + ")"
	}
	return out
}()

// metadataNames are the cloud metadata services' names, refused whatever
// they resolve to.
var metadataNames = []string{
	"metadata", "metadata.google.internal", "metadata.goog",
	"instance-data", "instance-data.ec2.internal", "metadata.azure.internal",
	"metadata.tencentyun.com", "100-100-100-200.metadata",
}

// loopbackAddrs are what a localhost name is checked as: RFC 6761 makes
// "localhost" and every name under it loopback whatever DNS says, and
// both families must be allowed, as both may be dialled.
var loopbackAddrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}

// Policy decides which addresses outbound requests may reach. The nil
// Policy allows no network beyond the public ones.
type Policy struct {
	allowed []netip.Prefix
}

// ParseNetworks reads a list of CIDR prefixes (or single addresses),
// separated by commas or white space, that are allowed even though they
// would be refused, such as "127.0.0.0/8,::1/128" for a developer's machine
// or "10.20.0.0/16" for an internal receiver. Empty allows nothing more.
func ParseNetworks(s string) (*Policy, error) {
	p := &Policy{}
	// Commas or spaces: SKYFLOW_PUSH_ALLOWED_NETWORKS has always taken both.
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			addr, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("allowed network %q is neither a CIDR prefix (10.1.0.0/16, fd00::/8) nor an address", item)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		p.allowed = append(p.allowed, prefix.Masked())
	}
	return p, nil
}

// Allowed lists the explicitly allowed networks.
func (p *Policy) Allowed() []netip.Prefix { return append([]netip.Prefix(nil), p.nets()...) }

// nets are the allowed networks, none for the nil Policy.
func (p *Policy) nets() []netip.Prefix {
	if p == nil {
		return nil
	}
	return p.allowed
}

// CheckAddr returns nil when addr may be reached, else a *RefusedError.
func (p *Policy) CheckAddr(addr netip.Addr) error {
	if !addr.IsValid() {
		return &RefusedError{Host: "an invalid address", Reason: "not an IP address"}
	}
	addr = addr.WithZone("")
	forms := []netip.Addr{addr}
	if v4, ok := embeddedIPv4(addr); ok {
		forms = append(forms, v4)
	}
	for _, f := range forms {
		for _, a := range p.nets() {
			if a.Contains(f) {
				return nil
			}
		}
	}
	for _, f := range forms {
		for _, b := range blocked {
			if b.prefix.Contains(f) {
				return &RefusedError{Host: addr.String(), Reason: b.why}
			}
		}
	}
	return nil
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries at a
// fixed place: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
// well-known NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::). The
// local-use NAT64 range has no fixed place and is refused whole (blocked).
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4() {
		return netip.Addr{}, false
	}
	if a.Is4In6() {
		return a.Unmap(), true
	}
	b := a.As16()
	zero := func(bs []byte) bool {
		for _, x := range bs {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(b[:12]): // ::a.b.c.d (:: and ::1 are in the blocked table already)
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case zero(b[4:12]) && b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b: // 64:ff9b::/96
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// CheckName refuses the cloud metadata services' names (and names under
// them), whatever they resolve to.
func (p *Policy) CheckName(host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, m := range metadataNames {
		if h == m || strings.HasSuffix(h, "."+m) {
			return &RefusedError{Host: host, Reason: "a cloud metadata service's name"}
		}
	}
	return nil
}

// CheckHost checks a URL's host (a name or an IP literal, without port):
// first as [Policy.CheckHostNoLookup] does; then a name must resolve, and
// every address it resolves to must be allowed, so that a name pointing
// inside the network is refused when it is given, not only when it is used.
func (p *Policy) CheckHost(ctx context.Context, r *net.Resolver, host string) error {
	if resolve, err := p.checkWithoutLookup(host); err != nil || !resolve {
		return err
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: %s does not resolve", ErrUnresolvable, host)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %s has no address", ErrUnresolvable, host)
	}
	return p.checkResolved(host, addrs)
}

// CheckHostNoLookup checks what a URL's host says by itself, without DNS:
// an IP literal (a trailing dot and brackets aside) is checked as is; a
// name must not be a metadata service's, a localhost name counts as
// loopback, and a name whose last label is numeric (2130706433, 127.1,
// 0x7f.1) is refused, since resolvers read those as IPv4 addresses. Any
// other name is left to the connection-time check. It suits a caller that
// must not depend on DNS when it accepts a URL (a browser's push endpoint).
func (p *Policy) CheckHostNoLookup(host string) error {
	_, err := p.checkWithoutLookup(host)
	return err
}

// checkWithoutLookup is CheckHostNoLookup; resolve says the host is a name
// that passed and is still to be resolved.
func (p *Policy) checkWithoutLookup(host string) (resolve bool, err error) {
	h := strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if addr, err := netip.ParseAddr(h); err == nil {
		return false, p.CheckAddr(addr)
	}
	if err := p.CheckName(host); err != nil {
		return false, err
	}
	h = strings.ToLower(h)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return false, p.checkResolved(host, loopbackAddrs)
	}
	labels := strings.Split(h, ".")
	switch last := labels[len(labels)-1]; {
	case last == "":
		return false, &RefusedError{Host: host, Reason: "not a host name"}
	case strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x"):
		return false, &RefusedError{Host: host, Reason: "a numeric host that resolvers read as an IPv4 address (write it as a.b.c.d)"}
	}
	return true, nil
}

// checkResolved checks every address a name resolves to.
func (p *Policy) checkResolved(host string, addrs []netip.Addr) error {
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Reason = fmt.Sprintf("a name that resolves to %s, %s", re.Host, re.Reason)
				re.Host = host
			}
			return err
		}
	}
	return nil
}

// ErrUnresolvable is wrapped by CheckHost's error for a name that does not
// resolve.
var ErrUnresolvable = errors.New("the host name does not resolve")

// Control is a net.Dialer Control function: it checks the address about to
// be connected to (after resolution) and refuses the connection before it
// is made.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Host: address, Reason: "not an IP address and port"}
	}
	if !strings.HasPrefix(network, "tcp") {
		return &RefusedError{Host: address, Reason: "not a TCP connection (" + network + ")"}
	}
	if ap.Port() == 0 {
		return &RefusedError{Host: address, Reason: "port 0"}
	}
	return p.CheckAddr(ap.Addr())
}

// Dialer is a net.Dialer that connects only where the policy allows.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.Control}
}

// Transport is an http.Transport that dials through [Policy.Dialer], never
// through a proxy, with TLS 1.2 at least.
func (p *Policy) Transport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // HTTP_PROXY would dial the proxy, not the checked address
		DialContext:           p.Dialer(timeout).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// Client is an http.Client on [Policy.Transport] that follows no
// redirect: a 3xx is returned as the response (a webhook sender treats it
// as a failure), so a receiver cannot send the request somewhere else.
// timeout bounds each request as a whole.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     p.Transport(timeout),
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
