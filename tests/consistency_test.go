package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/local/manifest"
)

// functionDirs lists functions/<name> directories that hold a command.
func functionDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root(t), "functions", "*", "main.go"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no functions found (%v)", err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	return names
}

// Every function has its func.yaml, tests and exactly one Knative Service;
// every Service runs a function that exists; every Trigger and sink points
// at a Service in the manifests.
func TestFunctionsManifestsAndTriggersAgree(t *testing.T) {
	r := root(t)
	set, err := manifest.Load(filepath.Join(r, "knative"), filepath.Join(r, "eventing"))
	if err != nil {
		t.Fatalf("the manifests do not load: %v", err)
	}
	functions := functionDirs(t)
	for _, name := range functions {
		for _, f := range []string{"func.yaml", "function.go", "function_test.go"} {
			if _, err := os.Stat(filepath.Join(r, "functions", name, f)); err != nil {
				t.Errorf("functions/%s has no %s", name, f)
			}
		}
		n := 0
		for _, s := range set.Services {
			if s.Name == name {
				n++
				if want := "github.com/skyflow-oss/skyflow/functions/" + name; s.Package != want {
					t.Errorf("Service %s runs %s, want %s", name, s.Package, want)
				}
			}
		}
		if n != 1 {
			t.Errorf("function %s has %d Services in knative/, want 1", name, n)
		}
	}
	for _, s := range set.Services {
		if !slices.Contains(functions, s.Name) {
			t.Errorf("%s: Service %s has no functions/%s", s.File, s.Name, s.Name)
		}
	}
	services := func(d manifest.Destination) string {
		if d.Ref == nil || d.Ref.Kind != "Service" || set.Service(d.Ref.Name) != nil {
			return ""
		}
		return d.Ref.Name
	}
	for _, tr := range set.Triggers {
		if missing := services(tr.Subscriber); missing != "" {
			t.Errorf("%s: Trigger %s delivers to a missing Service %s", tr.File, tr.Name, missing)
		}
		if tr.Delivery != nil && tr.Delivery.DeadLetterSink != nil {
			if missing := services(*tr.Delivery.DeadLetterSink); missing != "" {
				t.Errorf("%s: Trigger %s dead-letters to a missing Service %s", tr.File, tr.Name, missing)
			}
		}
	}
}

// Every event type a function declares it emits (func.yaml annotation
// skyflow.dev/emits) has a schema in the catalog, and every schema belongs
// to a function that emits it. Each function's own tests validate the
// events it really emits against the catalog.
func TestEveryEmittedEventTypeIsInTheCatalog(t *testing.T) {
	types, err := catalog.Types()
	if err != nil {
		t.Fatal(err)
	}
	emitted := map[string]string{}
	for _, name := range functionDirs(t) {
		raw, err := os.ReadFile(filepath.Join(root(t), "functions", name, "func.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Deploy struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"deploy"`
		}
		if err := yaml.Unmarshal(raw, &f); err != nil {
			t.Fatalf("functions/%s/func.yaml: %v", name, err)
		}
		for _, typ := range strings.Split(f.Deploy.Annotations["skyflow.dev/emits"], ",") {
			if typ = strings.TrimSpace(typ); typ == "" {
				continue
			}
			emitted[typ] = name
			if !slices.Contains(types, typ) {
				t.Errorf("functions/%s emits %s, which has no schema in eventing/catalog/", name, typ)
			}
		}
	}
	for _, typ := range types {
		if _, ok := emitted[typ]; !ok {
			t.Errorf("eventing/catalog/%s.json: no function declares it emits %s (skyflow.dev/emits)", typ, typ)
		}
	}
}
