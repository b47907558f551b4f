package webhooks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
)

func TestNormalizePatterns(t *testing.T) {
	got, err := webhooks.NormalizePatterns([]string{"com.skyflow.vault.record.created", "com.skyflow.vault.", "com.skyflow.vault.*", "com.skyflow.*", "com.skyflow.user.login-locked_2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"com.skyflow.vault.record.created", "com.skyflow.vault.*", "com.skyflow.*", "com.skyflow.user.login-locked_2"}
	if !slices.Equal(got, want) {
		t.Fatalf("normalized %v, want %v", got, want)
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = "com.skyflow.a.b"
	}
	for name, in := range map[string][]string{
		"none":             nil,
		"51":               many,
		"empty":            {""},
		"other namespace":  {"com.example.thing"},
		"bare prefix":      {"com.skyflow"},
		"upper case":       {"com.skyflow.Vault.created"},
		"inner star":       {"com.skyflow.*.created"},
		"star not a part":  {"com.skyflow.vault*"},
		"double dot":       {"com.skyflow..vault"},
		"reply type":       {"com.skyflow.vault.records.insert.response"},
		"space":            {"com.skyflow.vault. created"},
		"long":             {"com.skyflow." + strings.Repeat("a", 200)},
		"everything":       {"*"},
		"trailing garbage": {"com.skyflow.vault.*x"},
	} {
		if _, err := webhooks.NormalizePatterns(in); err == nil {
			t.Errorf("%s: %v accepted", name, in)
		}
	}
	if _, err := webhooks.NormalizePatterns(many[:50]); err != nil {
		t.Errorf("50 patterns: %v", err)
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, typ string
		want         bool
	}{
		{"com.skyflow.vault.record.created", "com.skyflow.vault.record.created", true},
		{"com.skyflow.vault.record.created", "com.skyflow.vault.record.createdx", false},
		{"com.skyflow.vault.record.created", "com.skyflow.vault.record", false},
		{"com.skyflow.vault.record.*", "com.skyflow.vault.record.created", true},
		{"com.skyflow.vault.record.*", "com.skyflow.vault.record.deleted", true},
		{"com.skyflow.vault.record.*", "com.skyflow.vault.records.batch", false},
		{"com.skyflow.vault.record.*", "com.skyflow.vault.record.", false},
		{"com.skyflow.vault.*", "com.skyflow.vault.key.rotated", true},
		{"com.skyflow.vault.*", "com.skyflow.vaults.x", false},
		{"com.skyflow.*", "com.skyflow.webhook.tested", true},
		{"com.skyflow.*", "com.other.x", false},
	} {
		if got := webhooks.Match(c.pattern, c.typ); got != c.want {
			t.Errorf("Match(%s, %s) = %v", c.pattern, c.typ, got)
		}
	}
	if !webhooks.MatchAny([]string{"com.skyflow.a.b", "com.skyflow.vault.*"}, "com.skyflow.vault.created") {
		t.Error("MatchAny")
	}
	for typ, want := range map[string]bool{
		"com.skyflow.vault.record.created":          true,
		"com.skyflow.vault.records.insert.response": false,
		"com.other.thing":                           false,
		"dev.knative.sources.ping":                  false,
	} {
		if webhooks.Deliverable(typ) != want {
			t.Errorf("Deliverable(%s) != %v", typ, want)
		}
	}
}
