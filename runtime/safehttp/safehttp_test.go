package safehttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

func policy(t *testing.T, allowed string) *safehttp.Policy {
	t.Helper()
	p, err := safehttp.ParseNetworks(allowed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every internal address is refused, in every form that reaches it;
// public addresses are not.
func TestCheckAddrRefusesInternalAddresses(t *testing.T) {
	p := policy(t, "")
	refused := map[string]string{
		"127.0.0.1":              "loopback",
		"127.8.9.10":             "loopback",
		"169.254.169.254":        "link-local",
		"169.254.1.1":            "link-local",
		"10.0.0.1":               "private",
		"172.16.5.4":             "private",
		"172.31.255.255":         "private",
		"192.168.1.1":            "private",
		"100.64.0.1":             "carrier-grade NAT",
		"100.127.255.254":        "carrier-grade NAT",
		"0.0.0.0":                "unspecified",
		"0.1.2.3":                "unspecified",
		"255.255.255.255":        "broadcast",
		"240.0.0.1":              "reserved",
		"224.0.0.1":              "multicast",
		"239.255.255.250":        "multicast",
		"198.18.0.1":             "benchmarking",
		"192.0.0.170":            "IETF protocol",
		"::1":                    "loopback",
		"::":                     "unspecified",
		"fe80::1":                "link-local",
		"fe80::1%eth0":           "link-local",
		"fc00::1":                "unique local",
		"fd12:3456::1":           "unique local",
		"ff02::1":                "multicast",
		"::ffff:127.0.0.1":       "loopback",
		"::ffff:169.254.169.254": "link-local",
		"::ffff:10.0.0.1":        "private",
		"::ffff:100.64.0.1":      "carrier-grade NAT",
		"::ffff:0.0.0.0":         "unspecified",
		"::127.0.0.1":            "loopback",   // IPv4-compatible
		"64:ff9b::a9fe:a9fe":     "link-local", // NAT64 of 169.254.169.254
		"64:ff9b:1::a00:1":       "NAT64",
		// Local-use NAT64 with a /48 prefix carries 10.0.0.1 in bits 48-87;
		// the last 32 bits (8.8.8.8) mean nothing there.
		"64:ff9b:1:a00:0:100:808:808": "NAT64",
		"2002:a00:1::1":               "private", // 6to4 of 10.0.0.1
		"2002:7f00:1::1":              "loopback",
		"2001:db8::1":                 "documentation",
		"2001:0:4136:e378::1":         "Teredo",
		"fec0::1":                     "site-local",
		"100::1":                      "discard",
		"::ffff:192.168.0.1":          "private",
		"::ffff:255.255.255.255":      "broadcast",
		"64:ff9b::7f00:1":             "loopback",
		"::ffff:172.16.0.1":           "private",
		"::ffff:224.0.0.1":            "multicast",
		"::ffff:198.18.0.1":           "benchmarking",
		"::ffff:192.0.2.1":            "documentation",
		"2002:c0a8:101::1":            "private",
		"2002:a9fe:a9fe::":            "link-local",
		"::ffff:100.100.100.200":      "carrier-grade NAT", // Alibaba's metadata service
		"64:ff9b::ac10:1":             "private",
		"::ffff:127.255.255.255":      "loopback",
		"::a9fe:a9fe":                 "link-local",
		"::ffff:0a00:0001":            "private",
		"0:0:0:0:0:ffff:7f00:0001":    "loopback",
	}
	for s, why := range refused {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		err = p.CheckAddr(addr)
		var re *safehttp.RefusedError
		if !errors.As(err, &re) || !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("%s (%s) was not refused: %v", s, why, err)
			continue
		}
		if !strings.Contains(strings.ToLower(re.Reason), strings.ToLower(strings.Fields(why)[0])) {
			t.Errorf("%s: reason %q, want it to say %s", s, re.Reason, why)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "172.32.0.1", "100.128.0.1", "169.255.0.1", "11.0.0.1"} {
		if err := p.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("public %s refused: %v", s, err)
		}
	}
}

// An allowed network opens exactly itself (in its IPv4-mapped form too),
// nothing else.
func TestAllowedNetworks(t *testing.T) {
	p := policy(t, " 127.0.0.0/8, ::1/128 ,10.20.0.5")
	for _, s := range []string{"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "10.20.0.5"} {
		if err := p.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("allowed %s refused: %v", s, err)
		}
	}
	for _, s := range []string{"10.0.0.1", "10.20.0.6", "169.254.169.254", "192.168.0.1", "fe80::1", "::2"} {
		if err := p.CheckAddr(netip.MustParseAddr(s)); err == nil {
			t.Errorf("%s accepted though only loopback and 10.20.0.5 are allowed", s)
		}
	}
	if got := len(p.Allowed()); got != 3 {
		t.Errorf("Allowed() has %d networks, want 3", got)
	}
	// White space separates too (SKYFLOW_PUSH_ALLOWED_NETWORKS has always
	// taken "127.0.0.0/8 10.20.0.0/16").
	if got := len(policy(t, "127.0.0.0/8 10.20.0.0/16\tfd00::1,\n::1").Allowed()); got != 4 {
		t.Errorf("space-separated networks: %d, want 4", got)
	}
	// The nil Policy allows no more than the public Internet.
	var none *safehttp.Policy
	if none.CheckAddr(netip.MustParseAddr("127.0.0.1")) == nil || none.CheckAddr(netip.MustParseAddr("8.8.8.8")) != nil || none.Allowed() != nil {
		t.Error("the nil Policy does not act as the empty one")
	}
	// A local-use NAT64 address is allowed only by its own IPv6 prefix,
	// never through a guessed embedded IPv4 address.
	if err := policy(t, "10.0.0.0/8").CheckAddr(netip.MustParseAddr("64:ff9b:1::a00:1")); err == nil {
		t.Error("64:ff9b:1::a00:1 allowed by 10.0.0.0/8")
	}
	if err := policy(t, "64:ff9b:1::/48").CheckAddr(netip.MustParseAddr("64:ff9b:1::a00:1")); err != nil {
		t.Errorf("64:ff9b:1::a00:1 with its range allowed: %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "localhost", "10.0.0.0/8,nope", "::1/200"} {
		if _, err := safehttp.ParseNetworks(bad); err == nil {
			t.Errorf("ParseNetworks(%q) accepted", bad)
		}
	}
}

// At subscribe time a name is resolved and refused when it points
// inside; metadata names are refused whatever they resolve to.
func TestCheckHost(t *testing.T) {
	ctx := context.Background()
	closed := policy(t, "")
	open := policy(t, "127.0.0.0/8,::1/128")
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]", "::1", "169.254.169.254", "10.0.0.1"} {
		if err := closed.CheckHost(ctx, nil, host); !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("CheckHost(%q) = %v, want refused", host, err)
		}
	}
	if err := closed.CheckHost(ctx, nil, "localhost"); err == nil || !strings.Contains(err.Error(), "resolves to") {
		t.Errorf("localhost: %v, want a message that the name resolves to a refused address", err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]"} {
		if err := open.CheckHost(ctx, nil, host); err != nil {
			t.Errorf("CheckHost(%q) with loopback allowed = %v", host, err)
		}
	}
	for _, host := range []string{"metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata", "instance-data.ec2.internal", "x.metadata.google.internal"} {
		if err := open.CheckHost(ctx, nil, host); !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("metadata name %q: %v, want refused", host, err)
		}
	}
	if err := closed.CheckHost(ctx, nil, "no-such-host.invalid"); !errors.Is(err, safehttp.ErrUnresolvable) {
		t.Errorf("an unresolvable name: %v", err)
	}
	// What a host says by itself is refused with or without DNS: numeric
	// hosts that resolvers read as IPv4 (2130706433 is 127.0.0.1) and
	// localhost names, whatever a resolver would answer for them.
	for _, host := range []string{"2130706433", "0x7f000001", "127.1", "0x7f.1", "a.0x7f", "foo.123", "app.localhost", "LOCALHOST.", "127.0.0.1.", "metadata.google.internal", "[::1]", "foo.."} {
		if err := closed.CheckHostNoLookup(host); !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("CheckHostNoLookup(%q) = %v, want refused", host, err)
		}
		if err := closed.CheckHost(ctx, nil, host); !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("CheckHost(%q) = %v, want refused", host, err)
		}
	}
	// localhost is loopback in both families: allowing 127.0.0.0/8 alone
	// does not let it through, as ::1 may be dialled too.
	if err := policy(t, "127.0.0.0/8").CheckHostNoLookup("localhost"); !errors.Is(err, safehttp.ErrRefused) || !strings.Contains(err.Error(), "::1") {
		t.Errorf("localhost with only 127.0.0.0/8 allowed: %v", err)
	}
	for _, host := range []string{"localhost", "app.localhost", "127.0.0.1", "[::1]"} {
		if err := open.CheckHostNoLookup(host); err != nil {
			t.Errorf("CheckHostNoLookup(%q) with loopback allowed = %v", host, err)
		}
	}
	// Other names are left to the connection: no lookup happens, so an
	// unresolvable one passes.
	for _, host := range []string{"fcm.googleapis.com", "updates.push.services.mozilla.com.", "no-such-host.invalid", "x1.example"} {
		if err := closed.CheckHostNoLookup(host); err != nil {
			t.Errorf("CheckHostNoLookup(%q) = %v", host, err)
		}
	}
}

// receiver is a local HTTP server counting its requests.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// The check runs on the address dialled, whatever name led there: a
// request to a local server (by address or by a name that resolves to it,
// as a rebinding DNS answer would) never connects unless loopback is
// allowed.
func TestDialerRefusesAtConnectTime(t *testing.T) {
	srv, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	u, _ := url.Parse(srv.URL)
	byName := "http://localhost:" + u.Port() + "/"
	for _, target := range []string{srv.URL, byName} {
		resp, err := policy(t, "").Client(5 * time.Second).Get(target)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %d through the policy", target, resp.StatusCode)
		}
		if !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("%s: %v, want a refusal", target, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the server got %d requests through a closed policy", hits.Load())
	}
	resp, err := policy(t, "127.0.0.0/8,::1/128").Client(5 * time.Second).Get(byName)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("allowed loopback: %v", err)
	}
	resp.Body.Close()
	// A plain net.Dialer with the Control refuses too (UDP and port 0 as well).
	p := policy(t, "")
	if _, err := p.Dialer(time.Second).Dial("tcp", u.Host); !errors.Is(err, safehttp.ErrRefused) {
		t.Errorf("raw dial: %v", err)
	}
	if err := p.Control("udp", "8.8.8.8:53", nil); !errors.Is(err, safehttp.ErrRefused) {
		t.Errorf("udp: %v", err)
	}
	if err := p.Control("tcp4", "8.8.8.8:0", nil); !errors.Is(err, safehttp.ErrRefused) {
		t.Errorf("port 0: %v", err)
	}
	if err := p.Control("tcp4", "8.8.8.8:443", nil); err != nil {
		t.Errorf("a public address: %v", err)
	}
}

// A receiver that answers with a redirect to an internal address cannot
// send the request there: the policy's client returns the 3xx as is, and
// even a client that follows redirects on the policy's transport cannot
// connect to the target.
func TestRedirectToARefusedAddressIsNotFollowed(t *testing.T) {
	var targetHits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) }))
	defer internal.Close()
	iu, _ := url.Parse(internal.URL)
	for _, to := range []string{"http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]:" + iu.Port() + "/", "http://127.0.0.2:" + iu.Port() + "/"} {
		srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) })
		p := policy(t, "127.0.0.1/32") // the redirecting receiver only
		resp, err := p.Client(2*time.Second).Post(srv.URL, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != to {
			t.Errorf("redirect to %s: got %d, want the 302 itself", to, resp.StatusCode)
		}
		following := &http.Client{Transport: p.Transport(2 * time.Second), Timeout: 3 * time.Second}
		resp, err = following.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Errorf("redirect to %s followed: %d", to, resp.StatusCode)
		} else if !errors.Is(err, safehttp.ErrRefused) {
			t.Errorf("redirect to %s: %v, want a refusal at connect time", to, err)
		}
	}
	if targetHits.Load() != 0 {
		t.Fatalf("the internal target got %d requests", targetHits.Load())
	}
}

// The transport ignores HTTP_PROXY: a proxy would be dialled instead of
// the checked address.
func TestNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	if tr := policy(t, "").Transport(time.Second); tr.Proxy != nil {
		t.Fatal("the transport uses a proxy")
	}
}
