package funcyaml

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// head is what every func.yaml needs.
const head = "specVersion: 0.36.0\ncreated: 2026-01-02T03:04:05Z\nname: fn\n"

// write puts content in a func.yaml of a fresh directory and returns its path.
func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "func.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadAndValidate is Load then Validate.
func loadAndValidate(path string) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	return f.Validate()
}

// Every schema rule the renderer relies on, and every Skyflow convention,
// refuses a bad func.yaml with an error that names the file, the field
// and (where the field is in the file) its line.
func TestBadFuncYAML(t *testing.T) {
	cases := []struct {
		name    string
		content string
		// field is the field path the error names, after its line when
		// the field is in the file: "7: deploy.options.scale.min".
		field string
		// msg is part of the message.
		msg string
	}{
		// Strict decoding: additionalProperties false, types.
		{"unknown top-level field", head + "foo: bar\n", "4: foo", "unknown field (the document has only specVersion, name,"},
		{"unknown nested field", head + "deploy:\n  options:\n    scale:\n      minimum: 1\n", "7: deploy.options.scale.minimum", "unknown field (deploy.options.scale has only min, max, metric, target, utilization)"},
		{"the old deploy.env", head + "deploy:\n  env:\n    - name: A\n", "5: deploy.env", "unknown field"},
		{"unknown field in a list item", head + "run:\n  envs:\n    - name: A\n      valu: b\n", "7: run.envs[0].valu", "unknown field"},
		{"a key given twice", head + "invoke: http\ninvoke: cloudevent\n", "5: invoke", "is given twice"},
		{"an annotation given twice", head + "deploy:\n  annotations:\n    a: b\n    a: c\n", "7: deploy.annotations[a]", "is given twice"},
		{"min is not an integer", head + "deploy:\n  options:\n    scale:\n      min: two\n", "7: deploy.options.scale.min", `the string "two", want an integer`},
		{"min is a fraction", head + "deploy:\n  options:\n    scale:\n      min: 1.5\n", "7: deploy.options.scale.min", "want an integer"},
		{"target is not a number", head + "deploy:\n  options:\n    scale:\n      target: lots\n", "7: deploy.options.scale.target", "want a number"},
		{"an unquoted number annotation", head + "deploy:\n  annotations:\n    skyflow.dev/timeout-seconds: 120\n", "6: deploy.annotations[skyflow.dev/timeout-seconds]", `want a string (quote it: "120")`},
		{"an unquoted boolean label", head + "deploy:\n  labels:\n    - key: a\n      value: true\n", "7: deploy.labels[0].value", `want a string (quote it: "true")`},
		{"envs is not a list", head + "run:\n  envs:\n    A: b\n", "5: run.envs", "is a mapping, want a list"},
		{"deploy is not a mapping", head + "deploy: yes\n", "4: deploy", "want a mapping"},
		{"RunAsNonRoot is not a boolean", head + "run:\n  podSecurityContext:\n    RunAsNonRoot: sure\n", "6: run.podSecurityContext.RunAsNonRoot", "want true or false"},
		{"runAsUser spelled the Kubernetes way", head + "run:\n  podSecurityContext:\n    runAsUser: 1000\n", "6: run.podSecurityContext.runAsUser", "has only RunAsUser, RunAsGroup, RunAsNonRoot, FSGroup"},

		// Required fields and top-level patterns.
		{"missing specVersion", "created: 2026-01-02T03:04:05Z\nname: fn\n", "specVersion", "is required"},
		{"bad specVersion", "specVersion: latest\ncreated: 2026-01-02T03:04:05Z\n", "1: specVersion", "not a version"},
		{"missing created", "specVersion: 0.36.0\nname: fn\n", "created", "is required"},
		{"created is a date only", "specVersion: 0.36.0\ncreated: 2026-01-02\n", "2: created", "not an RFC 3339 date-time"},
		{"created is not a date", "specVersion: 0.36.0\ncreated: yesterday\n", "2: created", "not an RFC 3339 date-time"},
		{"bad name", "specVersion: 0.36.0\ncreated: 2026-01-02T03:04:05Z\nname: My_Function\n", "3: name", `"My_Function" is not a function name`},
		{"name ends with a dash", "specVersion: 0.36.0\ncreated: 2026-01-02T03:04:05Z\nname: fn-\n", "3: name", "not a function name"},
		{"bad invoke", head + "invoke: grpc\n", "4: invoke", `"grpc" is not one of http, cloudevent`},
		{"bad builder", head + "build:\n  builder: ko\n", "5: build.builder", `"ko" is not one of pack, s2i`},

		// Scale.
		{"min negative", head + "deploy:\n  options:\n    scale:\n      min: -1\n", "7: deploy.options.scale.min", "-1 is negative"},
		{"max negative", head + "deploy:\n  options:\n    scale:\n      max: -2\n", "7: deploy.options.scale.max", "-2 is negative"},
		{"min above max", head + "deploy:\n  options:\n    scale:\n      min: 3\n      max: 2\n", "7: deploy.options.scale.min", "3 is above deploy.options.scale.max (2)"},
		{"bad metric", head + "deploy:\n  options:\n    scale:\n      metric: cpu\n", "7: deploy.options.scale.metric", `"cpu" is not one of concurrency, rps`},
		{"target negative", head + "deploy:\n  options:\n    scale:\n      target: -0.5\n", "7: deploy.options.scale.target", "is negative"},
		{"utilization zero", head + "deploy:\n  options:\n    scale:\n      utilization: 0\n", "7: deploy.options.scale.utilization", "not a percentage from 1 to 100"},
		{"utilization above 100", head + "deploy:\n  options:\n    scale:\n      utilization: 100.5\n", "7: deploy.options.scale.utilization", "not a percentage from 1 to 100"},
		{"scale set by annotation", head + "deploy:\n  annotations:\n    autoscaling.knative.dev/min-scale: \"1\"\n", "6: deploy.annotations[autoscaling.knative.dev/min-scale]", "deploy.options.scale.min"},

		// Resources.
		{"cpu is not a quantity", head + "deploy:\n  options:\n    resources:\n      requests:\n        cpu: half\n", "8: deploy.options.resources.requests.cpu", `"half" is not a Kubernetes quantity`},
		{"cpu fits the schema's pattern but not Kubernetes'", head + "deploy:\n  options:\n    resources:\n      limits:\n        cpu: 500mm\n", "8: deploy.options.resources.limits.cpu", "not a Kubernetes quantity"},
		{"cpu negative", head + "deploy:\n  options:\n    resources:\n      limits:\n        cpu: \"-1\"\n", "8: deploy.options.resources.limits.cpu", "not a Kubernetes quantity"},
		{"memory in millibytes", head + "deploy:\n  options:\n    resources:\n      limits:\n        memory: 128m\n", "8: deploy.options.resources.limits.memory", "thousandths of a byte"},
		{"memory is not a quantity", head + "deploy:\n  options:\n    resources:\n      requests:\n        memory: 1..2Gi\n", "8: deploy.options.resources.requests.memory", "not a Kubernetes quantity"},
		{"concurrency negative", head + "deploy:\n  options:\n    resources:\n      limits:\n        concurrency: -1\n", "8: deploy.options.resources.limits.concurrency", "-1 is negative"},

		// Environment.
		{"bad env name", head + "run:\n  envs:\n    - name: 1ST\n      value: x\n", "6: run.envs[0].name", `"1ST" is not an environment variable name`},
		{"env name with a space", head + "run:\n  envs:\n    - name: MY VAR\n", "6: run.envs[0].name", "not an environment variable name"},
		{"env without a name", head + "run:\n  envs:\n    - value: \"{{ secret:all }}\"\n", "6: run.envs[0].name", "is required"},
		{"env set twice", head + "run:\n  envs:\n    - name: A\n    - name: A\n", "7: run.envs[1].name", "A is also set by run.envs[0]"},
		{"secret without a key", head + "run:\n  envs:\n    - name: A\n      value: \"{{ secret:skyflow-postgres }}\"\n", "7: run.envs[0].value", "not a template the renderer supports"},
		{"secret template with a typo", head + "run:\n  envs:\n    - name: A\n      value: \"{{ secrets:skyflow-postgres:url }}\"\n", "7: run.envs[0].value", "not a template the renderer supports"},
		{"secret template inside a literal", head + "run:\n  envs:\n    - name: A\n      value: \"postgres://{{ secret:db:password }}@db\"\n", "7: run.envs[0].value", "as the whole value"},
		{"local env template", head + "run:\n  envs:\n    - name: A\n      value: \"{{ env:HOME }}\"\n", "7: run.envs[0].value", "not a template the renderer supports"},
		{"bad secret name", head + "run:\n  envs:\n    - name: A\n      value: \"{{ secret:Skyflow_DB:url }}\"\n", "7: run.envs[0].value", `"Skyflow_DB" is not a secret name`},
		{"template in a build env", head + "build:\n  buildEnvs:\n    - name: A\n      value: \"{{ secret:a:b }}\"\n", "7: build.buildEnvs[0].value", "not a template the renderer supports"},

		// Labels.
		{"bad label key", head + "deploy:\n  labels:\n    - key: -bad\n      value: x\n", "6: deploy.labels[0].key", `"-bad" is not a label key`},
		{"label key with two slashes", head + "deploy:\n  labels:\n    - key: a/b/c\n", "6: deploy.labels[0].key", "not a label key"},
		{"label key too long", head + "deploy:\n  labels:\n    - key: " + strings.Repeat("a", 64) + "\n", "6: deploy.labels[0].key", "not a label key"},
		{"label without a key", head + "deploy:\n  labels:\n    - value: x\n", "6: deploy.labels[0].key", "is required"},
		{"bad label value", head + "deploy:\n  labels:\n    - key: a\n      value: \"x y\"\n", "7: deploy.labels[0].value", "not a label value"},
		{"visibility as a label", head + "deploy:\n  labels:\n    - key: networking.knative.dev/visibility\n      value: cluster-local\n", "6: deploy.labels[0].key", "skyflow.dev/visibility"},
		{"label set twice", head + "deploy:\n  labels:\n    - key: a\n    - key: a\n", "7: deploy.labels[1].key", "also set by deploy.labels[0]"},

		// Subscriptions.
		{"subscription without source", head + "deploy:\n  subscriptions:\n    - filters:\n        type: a.b\n", "6: deploy.subscriptions[0].source", "is required"},
		{"bad filter attribute", head + "deploy:\n  subscriptions:\n    - source: default\n      filters:\n        Type: a.b\n", "8: deploy.subscriptions[0].filters[Type]", "not a CloudEvents attribute name"},
		{"empty filter value", head + "deploy:\n  subscriptions:\n    - source: default\n      filters:\n        type: \"\"\n", "8: deploy.subscriptions[0].filters[type]", "the value is empty"},
		{"star filter", head + "deploy:\n  subscriptions:\n    - source: default\n      filters:\n        type: \"*\"\n", "8: deploy.subscriptions[0].filters[type]", "matches every value"},
		{"star inside a filter", head + "deploy:\n  subscriptions:\n    - source: default\n      filters:\n        type: a.*.b\n", "8: deploy.subscriptions[0].filters[type]", "only allowed at the end"},

		// Skyflow's annotations.
		{"unknown Skyflow annotation", head + "deploy:\n  annotations:\n    skyflow.dev/visiblity: public\n", "6: deploy.annotations[skyflow.dev/visiblity]", "unknown Skyflow annotation"},
		{"bad visibility", head + "deploy:\n  annotations:\n    skyflow.dev/visibility: internet\n", "6: deploy.annotations[skyflow.dev/visibility]", `"internet" is not one of public, cluster-local`},
		{"bad timeout", head + "deploy:\n  annotations:\n    skyflow.dev/timeout-seconds: 2m\n", "6: deploy.annotations[skyflow.dev/timeout-seconds]", "not a whole number of seconds"},
		{"zero timeout", head + "deploy:\n  annotations:\n    skyflow.dev/timeout-seconds: \"0\"\n", "6: deploy.annotations[skyflow.dev/timeout-seconds]", "not a whole number of seconds > 0"},
		{"bad retry", head + "deploy:\n  annotations:\n    skyflow.dev/delivery-retry: \"-1\"\n", "6: deploy.annotations[skyflow.dev/delivery-retry]", "not a whole number ≥ 0"},
		{"Go duration as backoff delay", head + "deploy:\n  annotations:\n    skyflow.dev/delivery-backoff-delay: 500ms\n", "6: deploy.annotations[skyflow.dev/delivery-backoff-delay]", "not an ISO-8601 duration"},
		{"empty ISO duration", head + "deploy:\n  annotations:\n    skyflow.dev/delivery-timeout: PT\n", "6: deploy.annotations[skyflow.dev/delivery-timeout]", "not an ISO-8601 duration"},
		{"bad backoff policy", head + "deploy:\n  annotations:\n    skyflow.dev/delivery-backoff-policy: random\n", "6: deploy.annotations[skyflow.dev/delivery-backoff-policy]", "not one of exponential, linear"},
		{"bad delivery order", head + "deploy:\n  annotations:\n    skyflow.dev/delivery-order: sorted\n", "6: deploy.annotations[skyflow.dev/delivery-order]", "not one of ordered, unordered"},
		{"bad dead-letter sink", head + "deploy:\n  annotations:\n    skyflow.dev/dead-letter-sink: Dead_Letters\n", "6: deploy.annotations[skyflow.dev/dead-letter-sink]", `neither a Service name nor "none"`},
		{"empty emitted type", head + "deploy:\n  annotations:\n    skyflow.dev/emits: a.b,,c.d\n", "6: deploy.annotations[skyflow.dev/emits]", "empty event type"},
		{"bad annotation key", head + "deploy:\n  annotations:\n    \"a b\": c\n", "6: deploy.annotations[a b]", "not an annotation key"},

		// The rest of the schema.
		{"relative health endpoint", head + "deploy:\n  healthEndpoints:\n    readiness: health/readiness\n", "6: deploy.healthEndpoints.readiness", "not an absolute path"},
		{"bad service account", head + "deploy:\n  serviceAccountName: Skyflow\n", "5: deploy.serviceAccountName", "not a ServiceAccount name"},
		{"volume of two kinds", head + "run:\n  volumes:\n    - secret: a\n      configMap: b\n      path: /a\n", "6: run.volumes[0]", "sets 2 of secret, configMap"},
		{"volume without a path", head + "run:\n  volumes:\n    - secret: a\n", "6: run.volumes[0].path", "is required"},
		{"volume at a relative path", head + "run:\n  volumes:\n    - secret: a\n      path: etc/a\n", "7: run.volumes[0].path", "not an absolute path"},
		{"bad emptyDir medium", head + "run:\n  volumes:\n    - emptyDir:\n        medium: Disk\n      path: /tmp\n", "7: run.volumes[0].emptyDir.medium", `"Disk" is not one of Memory`},
		{"negative start timeout", head + "run:\n  startTimeout: -1\n", "5: run.startTimeout", "is negative"},

		// The file as a whole.
		{"empty file", "", "", "the file is empty"},
		{"only a comment", "# nothing\n", "", "the file is empty"},
		{"two documents", head + "---\nname: other\n", "4", "holds one YAML document"},
		{"a list", "- a\n- b\n", "1: the document", "is a list, want a mapping"},
		{"not YAML", "name: [unclosed\n", "", "not valid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := write(t, c.content)
			err := loadAndValidate(path)
			if err == nil {
				t.Fatalf("accepted:\n%s", c.content)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("the error does not name the file %s: %v", path, err)
			}
			want := path + ": " + c.field // a field that is not in the file has no line
			if c.field == "" {
				want = path
			} else if c.field[0] >= '0' && c.field[0] <= '9' {
				want = path + ":" + c.field
			}
			if !strings.Contains(msg, want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
			if !strings.Contains(msg, c.msg) {
				t.Errorf("the error does not say %q: %v", c.msg, err)
			}
		})
	}
}

// Every problem of a file is reported at once, in file order.
func TestEveryProblemIsReported(t *testing.T) {
	path := write(t, "specVersion: 0.36.0\nname: Bad\ninvoke: grpc\ndeploy:\n  options:\n    scale:\n      metric: cpu\n      utilization: 0\n")
	err := loadAndValidate(path)
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		path + ": created: is required",
		path + ":2: name:",
		path + ":3: invoke:",
		path + ":7: deploy.options.scale.metric:",
		path + ":8: deploy.options.scale.utilization:",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d problems reported, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d: %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	// Decoding errors too: both unknown fields at once.
	_, err = Load(write(t, head+"foo: 1\nbar: 2\n"))
	if err == nil || !strings.Contains(err.Error(), ": foo:") || !strings.Contains(err.Error(), ": bar:") {
		t.Errorf("Load = %v, want both unknown fields", err)
	}
}

// A func.yaml that uses every field of the schema decodes into the
// struct and validates.
func TestEveryField(t *testing.T) {
	f, err := Load(write(t, `
specVersion: 0.36.0
name: every-field
domain: example.com
runtime: go
registry: ghcr.io/example
image: ghcr.io/example/every-field:latest
namespace: skyflow
created: 2026-01-02T03:04:05.123456Z   # unquoted: a YAML timestamp
invoke: http
build:
  git:
    url: https://github.com/example/repo
    revision: main
    contextDir: fn
  builderImages:
    pack: example.com/builder
  buildpacks: [a, b]
  builder: pack
  buildEnvs:
    - name: GOFLAGS
      value: -trimpath
  pvcSize: 256Mi
  remoteStorageClass: fast
run:
  volumes:
    - secret: tls
      path: /etc/tls
    - configMap: settings
      path: /etc/settings
    - persistentVolumeClaim:
        claimName: data
        readOnly: true
      path: /data
    - emptyDir:
        medium: Memory
        sizeLimit: 64Mi
      path: /tmp
  envs:
    - name: PLAIN
      value: "1"
    - name: FROM_SECRET
      value: '{{ secret:db:url }}'
    - name: FROM_CONFIG_MAP
      value: '{{configMap:settings:level}}'
    - name: EMPTY
  podSecurityContext:
    RunAsUser: 1000
    RunAsGroup: 1000
    RunAsNonRoot: true
    FSGroup: 1000
  startTimeout: 60
deploy:
  namespace: skyflow
  image: ghcr.io/example/every-field@sha256:abc
  annotations:
    skyflow.dev/visibility: public
    skyflow.dev/timeout-seconds: "30"
    skyflow.dev/delivery-retry: "3"
    skyflow.dev/delivery-backoff-policy: linear
    skyflow.dev/delivery-backoff-delay: PT1S
    skyflow.dev/delivery-timeout: PT1M
    skyflow.dev/delivery-order: ordered
    skyflow.dev/dead-letter-sink: none
    skyflow.dev/emits: com.example.a,com.example.b
    example.com/anything: goes
  options:
    scale:
      min: 1
      max: 0
      metric: rps
      target: 0.5
      utilization: 70
    resources:
      requests:
        cpu: "0.1"
        memory: "1e8"
      limits:
        cpu: 1500m
        memory: 1Gi
        concurrency: 0
  labels:
    - key: example.com/team
      value: vault
    - key: flag
  healthEndpoints:
    liveness: /live
    readiness: /ready
  serviceAccountName: skyflow-functions
  subscriptions:
    - source: default
      filters:
        type: com.example.a
        source: /example/*
    - source: default
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Created != "2026-01-02T03:04:05.123456Z" {
		t.Errorf("created = %q: the timestamp's text should be kept", f.Created)
	}
	if *f.Deploy.Options.Scale.Max != 0 || *f.Deploy.Options.Scale.Target != 0.5 || *f.Deploy.Options.Resources.Limits.Concurrency != 0 {
		t.Errorf("scale = %+v", f.Deploy.Options.Scale)
	}
	if *f.Run.PodSecurityContext.RunAsUser != 1000 || !*f.Run.Volumes[2].PersistentVolumeClaim.ReadOnly {
		t.Errorf("run = %+v", f.Run)
	}
	if got, ok := f.Run.Envs[2].Ref(); !ok || got != (EnvRef{Kind: "configMap", Name: "settings", Key: "level"}) {
		t.Errorf("FROM_CONFIG_MAP ref = %+v, %v", got, ok)
	}
	if _, ok := f.Run.Envs[0].Ref(); ok {
		t.Error("a literal is a ref")
	}
	if f.Deploy.Subscriptions[0].Filters["source"] != "/example/*" || len(f.Deploy.Subscriptions) != 2 {
		t.Errorf("subscriptions = %+v", f.Deploy.Subscriptions)
	}
	if f.Build.Buildpacks[1] != "b" || f.Build.Git.ContextDir != "fn" {
		t.Errorf("build = %+v", f.Build)
	}
}

// Every func.yaml of the repository is valid.
func TestCommittedFuncYAMLValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "functions", "*", "func.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no functions/*/func.yaml (%v)", err)
	}
	files = append(files, filepath.Join("..", "..", "func.yaml"))
	for _, file := range files {
		if err := loadAndValidate(file); err != nil {
			t.Error(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestMerge(t *testing.T) {
	newRoot := func() *Function {
		return &Function{
			File: "func.yaml", SpecVersion: "0.36.0", Runtime: "go", Invoke: "cloudevent",
			Run: RunSpec{Envs: []Env{{Name: "LOG_LEVEL", Value: "info"}, {Name: "A", Value: "root"}}},
			Deploy: DeploySpec{
				ServiceAccountName: "skyflow-functions",
				Annotations:        map[string]string{"x": "root", "y": "root"},
				Labels:             []Label{{Key: "k", Value: "root"}},
				Options: Options{
					Scale:     ScaleOptions{Min: ptr(1), Max: ptr(10), Metric: "concurrency"},
					Resources: ResourcesOptions{Limits: ResourceLimits{CPU: "500m", Memory: "128Mi"}},
				},
				HealthEndpoints: HealthEndpoints{Liveness: "/live", Readiness: "/ready"},
			},
		}
	}
	newFn := func() *Function {
		return &Function{
			File: "functions/fn/func.yaml", Name: "fn", Invoke: "http",
			Run: RunSpec{Envs: []Env{{Name: "A", Value: "fn"}, {Name: "B", Value: "fn"}}},
			Deploy: DeploySpec{
				Annotations:   map[string]string{"y": "fn", "z": "fn"},
				Labels:        []Label{{Key: "k", Value: "fn"}, {Key: "l", Value: "fn"}},
				Options:       Options{Scale: ScaleOptions{Min: ptr(0)}, Resources: ResourcesOptions{Limits: ResourceLimits{CPU: "1"}}},
				Subscriptions: []Subscription{{Source: "default", Filters: map[string]string{"type": "a"}}},
			},
		}
	}
	root, fn := newRoot(), newFn()
	m := Merge(root, fn)

	want := &Function{
		File: "functions/fn/func.yaml", SpecVersion: "0.36.0", Name: "fn", Runtime: "go", Invoke: "http",
		Run: RunSpec{Envs: []Env{{Name: "LOG_LEVEL", Value: "info"}, {Name: "A", Value: "fn"}, {Name: "B", Value: "fn"}}},
		Deploy: DeploySpec{
			ServiceAccountName: "skyflow-functions",
			Annotations:        map[string]string{"x": "root", "y": "fn", "z": "fn"},
			Labels:             []Label{{Key: "k", Value: "fn"}, {Key: "l", Value: "fn"}},
			Options: Options{
				Scale:     ScaleOptions{Min: ptr(0), Max: ptr(10), Metric: "concurrency"},
				Resources: ResourcesOptions{Limits: ResourceLimits{CPU: "1", Memory: "128Mi"}},
			},
			HealthEndpoints: HealthEndpoints{Liveness: "/live", Readiness: "/ready"},
			Subscriptions:   []Subscription{{Source: "default", Filters: map[string]string{"type": "a"}}},
		},
	}
	m.lines = nil
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Merge =\n%+v\nwant\n%+v", m, want)
	}

	// The result shares nothing with its inputs.
	m.Deploy.Annotations["x"] = "changed"
	m.Run.Envs[0].Value = "changed"
	*m.Deploy.Options.Scale.Max = 99
	m.Deploy.Subscriptions[0].Filters["type"] = "changed"
	if !reflect.DeepEqual(root, newRoot()) || !reflect.DeepEqual(fn, newFn()) {
		t.Error("changing the merge changed its inputs")
	}
	if got := Merge(nil, fn); got.Name != "fn" || got.Deploy.Options.Scale.Max != nil {
		t.Errorf("Merge(nil, fn) = %+v", got)
	}
}
