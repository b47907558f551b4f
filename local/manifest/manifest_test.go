package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const service = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: records-insert
  labels: {networking.knative.dev/visibility: cluster-local}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "0"
        autoscaling.knative.dev/max-scale: "5"
        autoscaling.knative.dev/scale-to-zero-pod-retention-period: 45s
    spec:
      containerConcurrency: 10
      timeoutSeconds: 30
      containers:
        - image: ko://github.com/skyflow-oss/skyflow/functions/records-insert
          env:
            - {name: LOG_LEVEL, value: debug}
            - name: DATABASE_URL
              valueFrom: {secretKeyRef: {name: skyflow-postgres, key: url}}
`

const eventing = `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
spec:
  delivery: {retry: 3, backoffPolicy: linear, backoffDelay: PT0.5S, timeout: PT1M}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: audit
  annotations: {kafka.eventing.knative.dev/delivery.order: ordered, kafka.eventing.knative.dev/initial.offset: earliest}
spec:
  broker: default
  filters:
    - any:
        - prefix: {type: com.skyflow.vault.}
        - not: {exact: {type: com.skyflow.user.registered}}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: records-insert}
  delivery:
    deadLetterSink: {uri: "http://dead.example/letters"}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: sweep}
spec:
  schedule: "*/5 * * * *"
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: records-insert}}
`

func TestLoadReadsWhatTheRuntimeActsOn(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "knative/records-insert.yaml", service)
	write(t, dir, "eventing/all.yaml", eventing)
	write(t, dir, "knative/kustomization.yaml", "resources: [records-insert.yaml]\n")
	write(t, dir, "knative/overlays/prod/patch.yaml", "kind: Service\napiVersion: serving.knative.dev/v1\nmetadata: {name: records-insert}\n")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Services) != 1 || len(set.Brokers) != 1 || len(set.Triggers) != 1 || len(set.PingSources) != 1 {
		t.Fatalf("loaded %+v", set)
	}
	s := set.Services[0]
	if s.Package != "github.com/skyflow-oss/skyflow/functions/records-insert" || s.MinScale != 0 || s.MaxScale != 5 ||
		s.RetentionPeriod != 45*time.Second || !s.ClusterLocal || s.ContainerConcurrency != 10 || s.TimeoutSeconds != 30 ||
		s.Namespace != DefaultNamespace || s.ReadinessPath != "/health/readiness" {
		t.Fatalf("service %+v", s)
	}
	if len(s.Env) != 2 || s.Env[1].From == nil || s.Env[1].From.Kind != "Secret" || s.Env[1].From.Key != "url" {
		t.Fatalf("env %+v", s.Env)
	}
	b := set.Brokers[0]
	if b.Topic() != "knative-broker-skyflow-default" || b.Delivery.Retry != 3 || b.Delivery.Timeout != time.Minute ||
		b.Delivery.Backoff(3) != 1500*time.Millisecond {
		t.Fatalf("broker %+v", b)
	}
	tr := set.Triggers[0]
	if !tr.Ordered || !tr.FromEarliest || tr.ConsumerGroup() != "knative-trigger-skyflow-audit" ||
		tr.Delivery.BackoffPolicy != "exponential" || tr.Delivery.DeadLetterSink.URI != "http://dead.example/letters" {
		t.Fatalf("trigger %+v", tr)
	}
	if next := set.PingSources[0].Every.Next(time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)); next.Minute() != 5 {
		t.Fatalf("ping schedule next %v", next)
	}
}

func TestBadManifestsNameTheFileAndField(t *testing.T) {
	trigger := func(spec string) string {
		return "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1}\nspec:\n" + spec
	}
	base := "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n---\n" + service
	cases := []struct{ name, body, want string }{
		{"yaml syntax", "kind: [Service", "not valid YAML"},
		{"no kind", "metadata: {name: x}\n", "without a kind"},
		{"bad name", strings.Replace(service, "name: records-insert", "name: Records_Insert", 1), "metadata.name"},
		{"not a ko image", strings.Replace(service, "ko://github.com/skyflow-oss/skyflow/functions/records-insert", "nginx:1.27", 1), "containers[0].image"},
		{"min above max", strings.Replace(service, `min-scale: "0"`, `min-scale: "9"`, 1), "is above"},
		{"bad min-scale", strings.Replace(service, `min-scale: "0"`, `min-scale: "lots"`, 1), "min-scale"},
		{"bad retention", strings.Replace(service, "45s", "forever", 1), "retention-period"},
		{"bad visibility", strings.Replace(service, "cluster-local}", "everywhere}", 1), "visibility"},
		{"valueFrom without key", strings.Replace(service, ", key: url", "", 1), "env[1].valueFrom"},
		{"wrong type", strings.Replace(service, "containerConcurrency: 10", "containerConcurrency: ten", 1), "wrong type"},
		{"no broker", trigger("  subscriber: {uri: http://x}\n"), "spec.broker is required"},
		{"unknown broker", trigger("  broker: nope\n  subscriber: {uri: http://x}\n"), `no Broker "nope"`},
		{"unknown service", trigger("  broker: default\n  subscriber: {ref: {kind: Service, name: ghost}}\n"), `no Service "ghost"`},
		{"no subscriber", trigger("  broker: default\n"), "spec.subscriber: a ref or a uri is required"},
		{"two dialects", trigger("  broker: default\n  subscriber: {uri: http://x}\n  filters: [{exact: {type: a}, prefix: {type: b}}]\n"), "exactly one dialect"},
		{"cesql", trigger("  broker: default\n  subscriber: {uri: http://x}\n  filters: [{cesql: \"type = 'a'\"}]\n"), "spec.filters[0].cesql"},
		{"nested two attributes", trigger("  broker: default\n  subscriber: {uri: http://x}\n  filters: [{all: [{exact: {type: a, source: b}}]}]\n"), "spec.filters[0].all[0].exact"},
		{"bad attribute", trigger("  broker: default\n  subscriber: {uri: http://x}\n  filter: {attributes: {Type: a}}\n"), "spec.filter.attributes"},
		{"bad backoff", trigger("  broker: default\n  subscriber: {uri: http://x}\n  delivery: {backoffDelay: 5s}\n"), "spec.delivery.backoffDelay"},
		{"bad policy", trigger("  broker: default\n  subscriber: {uri: http://x}\n  delivery: {backoffPolicy: random}\n"), "backoffPolicy"},
		{"negative retry", trigger("  broker: default\n  subscriber: {uri: http://x}\n  delivery: {retry: -1}\n"), "retry"},
		{"bad order", "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t1, annotations: {kafka.eventing.knative.dev/delivery.order: sometimes}}\nspec: {broker: default, subscriber: {uri: http://x}}\n", "delivery.order"},
		{"bad schedule", "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {schedule: every day, sink: {uri: http://x}}\n", "spec.schedule"},
		{"bad timezone", "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec: {schedule: '* * * * *', timezone: Mars/Olympus, sink: {uri: http://x}}\n", "spec.timezone"},
		{"duplicate", service, "also defined in"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "base.yaml", base)
			file := write(t, dir, "bad.yaml", c.body)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("loaded without an error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml") && c.name != "duplicate" {
				t.Fatalf("error %q should name %s and mention %q", err, file, c.want)
			}
		})
	}
}

func TestISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "PT0.2S": 200 * time.Millisecond, "PT1M": time.Minute, "PT1H30M": 90 * time.Minute,
		"P1D": 24 * time.Hour, "P1W": 7 * 24 * time.Hour, "P1DT2S": 24*time.Hour + 2*time.Second,
	} {
		if got, err := isoDuration(in); err != nil || got != want {
			t.Errorf("isoDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"P", "PT", "1s", "P1Y", "P1M", "PT-1S", "PT1.S"} {
		if _, err := isoDuration(bad); err == nil {
			t.Errorf("isoDuration(%q) accepted", bad)
		}
	}
}

func FuzzLoadDocument(f *testing.F) {
	f.Add([]byte(service))
	f.Add([]byte(eventing))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s := &Set{}
		for _, d := range splitDocuments(doc) {
			_ = s.loadDocument("fuzz.yaml", d) // must not panic
		}
	})
}
