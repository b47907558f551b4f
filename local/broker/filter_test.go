package broker

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestFilterMatchesEveryDialect(t *testing.T) {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/apis/vault")
	e.SetType("com.skyflow.vault.record.created")
	e.SetSubject("rec-9")
	e.SetTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e.SetExtension("tenant", "acme")
	_ = e.SetData("application/json", []byte(`{}`))

	exact := func(k, v string) manifest.Filter { return manifest.Filter{Exact: map[string]string{k: v}} }
	prefix := func(k, v string) manifest.Filter { return manifest.Filter{Prefix: map[string]string{k: v}} }
	suffix := func(k, v string) manifest.Filter { return manifest.Filter{Suffix: map[string]string{k: v}} }
	not := func(f manifest.Filter) manifest.Filter { return manifest.Filter{Not: &f} }
	all := func(fs ...manifest.Filter) manifest.Filter { return manifest.Filter{All: fs} }
	anyOf := func(fs ...manifest.Filter) manifest.Filter { return manifest.Filter{Any: fs} }

	tests := []struct {
		name       string
		attributes map[string]string
		filters    []manifest.Filter
		want       bool
	}{
		{name: "no filter at all matches everything", want: true},
		{name: "legacy exact type", attributes: map[string]string{"type": "com.skyflow.vault.record.created"}, want: true},
		{name: "legacy exact type differs", attributes: map[string]string{"type": "com.skyflow.vault.record.deleted"}, want: false},
		{name: "legacy empty value needs the extension to exist", attributes: map[string]string{"tenant": ""}, want: true},
		{name: "legacy empty value fails on a missing extension", attributes: map[string]string{"region": ""}, want: false},
		{name: "legacy all attributes must match", attributes: map[string]string{"type": "com.skyflow.vault.record.created", "tenant": "other"}, want: false},
		{name: "legacy context attributes", attributes: map[string]string{"specversion": "1.0", "id": "id-1", "source": "/apis/vault", "subject": "rec-9", "datacontenttype": "application/json", "time": "2026-01-01T00:00:00Z"}, want: true},
		{name: "legacy dataschema absent", attributes: map[string]string{"dataschema": ""}, want: false},
		{name: "exact", filters: []manifest.Filter{exact("tenant", "acme")}, want: true},
		{name: "exact is case sensitive", filters: []manifest.Filter{exact("tenant", "ACME")}, want: false},
		{name: "exact on a missing attribute", filters: []manifest.Filter{exact("region", "")}, want: false},
		{name: "prefix", filters: []manifest.Filter{prefix("type", "com.skyflow.vault.")}, want: true},
		{name: "prefix no match", filters: []manifest.Filter{prefix("type", "com.skyflow.tokens.")}, want: false},
		{name: "suffix", filters: []manifest.Filter{suffix("type", ".created")}, want: true},
		{name: "suffix no match", filters: []manifest.Filter{suffix("type", ".deleted")}, want: false},
		{name: "not", filters: []manifest.Filter{not(suffix("type", ".deleted"))}, want: true},
		{name: "not of a match", filters: []manifest.Filter{not(exact("tenant", "acme"))}, want: false},
		{name: "all match", filters: []manifest.Filter{all(prefix("type", "com.skyflow."), exact("subject", "rec-9"))}, want: true},
		{name: "all with one miss", filters: []manifest.Filter{all(prefix("type", "com.skyflow."), exact("subject", "rec-8"))}, want: false},
		{name: "any with one hit", filters: []manifest.Filter{anyOf(exact("tenant", "x"), exact("tenant", "acme"))}, want: true},
		{name: "any with no hit", filters: []manifest.Filter{anyOf(exact("tenant", "x"), exact("tenant", "y"))}, want: false},
		{name: "nested", filters: []manifest.Filter{all(anyOf(suffix("type", ".created"), suffix("type", ".updated")), not(exact("source", "/apis/gateway")))}, want: true},
		{name: "every top-level filter must match", filters: []manifest.Filter{prefix("type", "com."), exact("tenant", "other")}, want: false},
		{name: "filters replace legacy attributes", attributes: map[string]string{"type": "nope"}, filters: []manifest.Filter{exact("tenant", "acme")}, want: true},
		{name: "cesql is never evaluated", filters: []manifest.Filter{{CESQL: "true"}}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &manifest.Trigger{Attributes: tt.attributes, Filters: tt.filters}
			if got := matches(tr, &e); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}
