package supervisor

import (
	"strconv"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestEnvironment(t *testing.T) {
	t.Parallel()
	svc := fnService("records-insert", withEnv("LITERAL", "plain", "OVERRIDDEN", "from manifest"), func(s *manifest.Service) {
		s.Env = append(s.Env,
			manifest.EnvVar{Name: "DB_PASSWORD", From: &manifest.EnvSource{Kind: "Secret", Name: "db", Key: "password"}},
			manifest.EnvVar{Name: "LOG_LEVEL", From: &manifest.EnvSource{Kind: "ConfigMap", Name: "settings", Key: "level"}},
			manifest.EnvVar{Name: "MAYBE", From: &manifest.EnvSource{Kind: "Secret", Name: "absent", Key: "k", Optional: true}},
			manifest.EnvVar{Name: "MAYBE_KEY", From: &manifest.EnvSource{Kind: "Secret", Name: "db", Key: "absent", Optional: true}},
		)
	})
	h := start(t, Config{
		Services: []manifest.Service{svc},
		Env:      map[string]string{"K_SINK": "http://127.0.0.1:9/broker", "OVERRIDDEN": "from config"},
		Secrets: map[string]map[string]string{
			"Secret/db":          {"password": "s3cret"},
			"ConfigMap/settings": {"level": "debug"},
		},
	})
	r := h.mustGet(t, "records-insert", "/")
	front, _ := h.URL("records-insert")
	want := map[string]string{
		"LITERAL":         "plain",
		"DB_PASSWORD":     "s3cret",
		"LOG_LEVEL":       "debug",
		"K_SINK":          "http://127.0.0.1:9/broker",
		"OVERRIDDEN":      "from config",
		"K_SERVICE":       "records-insert",
		"K_CONFIGURATION": "records-insert",
		"K_REVISION":      "records-insert-local",
	}
	for k, v := range want {
		if r.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, r.Env[k], v)
		}
	}
	for _, k := range []string{"MAYBE", "MAYBE_KEY", "HOME"} {
		if v, ok := r.Env[k]; ok {
			t.Errorf("%s = %q is set, want unset", k, v)
		}
	}
	port, err := strconv.Atoi(r.Env["PORT"])
	if err != nil || port == 0 || strconv.Itoa(port) == front.Port() {
		t.Errorf("PORT = %q, want a port of its own behind the front %s", r.Env["PORT"], front.Host)
	}
	if r.Host != front.Host {
		t.Errorf("the function saw Host %q, want the front's %q", r.Host, front.Host)
	}
}

func TestMissingSecret(t *testing.T) {
	t.Parallel()
	ref := func(kind, name, key string) func(*manifest.Service) {
		return func(s *manifest.Service) {
			s.Env = append(s.Env, manifest.EnvVar{Name: "DB_PASSWORD", From: &manifest.EnvSource{Kind: kind, Name: name, Key: key}})
		}
	}
	for _, tc := range []struct {
		secrets map[string]map[string]string
		svc     manifest.Service
		want    []string
	}{
		{nil, fnService("records-get", ref("Secret", "db", "password")),
			[]string{"knative/records-get.yaml", "DB_PASSWORD", `Secret "db" does not exist`, `"password"`}},
		{map[string]map[string]string{"Secret/db": {"user": "x"}}, fnService("records-get", ref("Secret", "db", "password")),
			[]string{"knative/records-get.yaml", "DB_PASSWORD", `Secret "db" has no key "password"`}},
		{map[string]map[string]string{"Secret/settings": {"level": "x"}}, fnService("records-get", ref("ConfigMap", "settings", "level")),
			[]string{"DB_PASSWORD", `ConfigMap "settings" does not exist`}},
	} {
		_, err := New(Config{Services: []manifest.Service{tc.svc}, BinDir: binDir, Secrets: tc.secrets, PublicAddr: "127.0.0.1:0"})
		if err == nil {
			t.Errorf("New with %v: no error", tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	public := func(s *manifest.Service) { s.ClusterLocal = false }
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{BinDir: t.TempDir(), Services: []manifest.Service{fnService("fn")}}, "build the functions first"},
		{Config{BinDir: binDir, Services: []manifest.Service{fnService("a", public), fnService("b", public)}}, "only one Service may be public"},
		{Config{BinDir: binDir, Services: []manifest.Service{fnService("a"), fnService("a")}}, "defined twice"},
		{Config{BinDir: binDir, Services: []manifest.Service{fnService("a", func(s *manifest.Service) { s.Package = "" })}}, "no Go package"},
		{Config{Services: []manifest.Service{fnService("a")}}, "BinDir"},
		{Config{BinDir: binDir, Env: map[string]string{"A=B": "c"}}, `"A=B" is not an environment variable name`},
	} {
		tc.cfg.PublicAddr = "127.0.0.1:0"
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: error %v, want one that says %q", err, tc.want)
		}
	}
}
