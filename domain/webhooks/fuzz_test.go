package webhooks_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
)

// ParseURL never panics, and what it accepts is an absolute http(s) URL
// with a host, no user information or fragment, within the length limit,
// whose host the standard parser reads back the same.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/skyflow", "http://[::1]:80/", "https://a@b/", "https://h/#x",
		"http://169.254.169.254/", "https://h:65535/?q=1", "HTTPS://H/", "https://%68/", "http://[fe80::1%25en0]/", "//h/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := webhooks.ParseURL(raw)
		if err != nil {
			if strings.Contains(err.Error(), raw) && len(raw) > 12 {
				t.Fatalf("the error echoes the URL: %v", err)
			}
			return
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil || u.Fragment != "" || len(raw) > webhooks.MaxURLLength {
			t.Fatalf("accepted %q: %#v", raw, u)
		}
		again, err := url.Parse(u.String())
		if err != nil || again.Hostname() != u.Hostname() || again.Port() != u.Port() {
			t.Fatalf("%q does not read back: %v", u.String(), err)
		}
	})
}

var canonical = regexp.MustCompile(`^com\.skyflow\.([a-z0-9][a-z0-9_-]*\.)*([a-z0-9][a-z0-9_-]*|\*)$`)

// NormalizePatterns never panics; what it returns is canonical, within
// the limits, and normalizing it again changes nothing; an exact type
// matches itself only, a prefix every type below it.
func FuzzNormalizePatterns(f *testing.F) {
	for _, s := range []string{"com.skyflow.vault.record.created", "com.skyflow.vault.", "com.skyflow.*", "com.skyflow.a.*,com.skyflow.a.", "*", "com.skyflow..x", "com.skyflow.x.response"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		in := strings.Split(list, ",")
		out, err := webhooks.NormalizePatterns(in)
		if err != nil {
			return
		}
		if len(out) == 0 || len(out) > webhooks.MaxPatterns {
			t.Fatalf("%q gave %d patterns", list, len(out))
		}
		for _, p := range out {
			if !canonical.MatchString(p) || len(p) > webhooks.MaxPatternLength+1 || strings.HasSuffix(p, ".response") {
				t.Fatalf("%q gave the non-canonical %q", list, p)
			}
			if prefix, ok := strings.CutSuffix(p, "*"); ok {
				if !webhooks.Match(p, prefix+"x") || webhooks.Match(p, prefix) {
					t.Fatalf("prefix %q matches wrongly", p)
				}
			} else if !webhooks.Match(p, p) || webhooks.Match(p, p+"x") {
				t.Fatalf("exact %q matches wrongly", p)
			}
		}
		again, err := webhooks.NormalizePatterns(out)
		if err != nil || strings.Join(again, ",") != strings.Join(out, ",") {
			t.Fatalf("normalizing %v again gave %v, %v", out, again, err)
		}
	})
}
