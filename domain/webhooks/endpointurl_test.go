package webhooks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

func TestParseURL(t *testing.T) {
	for _, ok := range []string{"https://hooks.example.com/skyflow", "http://hooks.example.com:8080/a?b=c", "https://1.2.3.4/x", "https://[2606:4700::1]:8443/"} {
		if _, err := webhooks.ParseURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for raw, want := range map[string]string{
		"":                                     "required",
		"ftp://hooks.example.com/":             "https",
		"hooks.example.com/x":                  "https",
		"https:///x":                           "absolute",
		"https://user:pw@hooks.example.com/":   "user name or password",
		"https://user@hooks.example.com/":      "user name or password",
		"https://hooks.example.com/#frag":      "fragment",
		"https://hooks.example.com/ x":         "printable ASCII",
		"https://hooks.exämple.com/":           "printable ASCII",
		"https://hooks.example.com:0/":         "port",
		"https://hooks.example.com:99999/":     "port",
		"https://[fe80::1%25eth0]/":            "zone",
		"javascript:alert(1)":                  "https",
		"https://" + strings.Repeat("a", 2048): "longer",
	} {
		_, err := webhooks.ParseURL(raw)
		ae, ok := err.(*apierr.Error)
		if !ok || ae.HTTPCode != 400 || !strings.Contains(ae.Message, want) {
			t.Errorf("ParseURL(%.40q) = %v, want a 400 saying %q", raw, err, want)
			continue
		}
		if strings.Contains(ae.Message, "pw@") || (len(raw) > 10 && strings.Contains(ae.Message, raw)) {
			t.Errorf("the message echoes the URL: %s", ae.Message)
		}
	}
}

func TestCheckDestination(t *testing.T) {
	p, _ := safehttp.ParseNetworks("")
	for raw, want := range map[string]string{
		"http://169.254.169.254/latest/meta-data/": "link-local",
		"http://10.0.0.1/":                         "private",
		"http://localhost:8080/":                   "resolves to",
		"http://[::1]/":                            "loopback",
		"http://metadata.google.internal/":         "metadata",
		"https://no-such-host.invalid/":            "does not resolve",
	} {
		u, err := webhooks.ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		err = webhooks.CheckDestination(context.Background(), p, nil, u)
		ae, ok := err.(*apierr.Error)
		if !ok || ae.HTTPCode != 400 || !strings.Contains(ae.Message, want) {
			t.Errorf("%s: %v, want a 400 saying %q", raw, err, want)
		}
	}
}
