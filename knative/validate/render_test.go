package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// module is the Go module whose functions/<name> packages ko builds.
	module = "github.com/skyflow-oss/skyflow"
	// namespace holds every Skyflow object.
	namespace = "skyflow"
	// serviceAccount is the identity of every function (Vault's Kubernetes auth).
	serviceAccount = "skyflow-functions"
	// publicService is the only Service that may be reachable from outside.
	publicService = "gateway"
	// visibilityLabel makes a Knative Service reachable only inside the cluster.
	visibilityLabel = "networking.knative.dev/visibility"
)

// overlays are the kustomize overlays under knative/overlays.
var overlays = []string{"dev", "prod"}

// elsewhere names the objects that must not be in namespace skyflow, with
// the namespace each belongs to: Knative Serving's cluster-wide settings.
var elsewhere = map[string]string{
	"ConfigMap/config-network":  "knative-serving",
	"ConfigMap/config-domain":   "knative-serving",
	"ConfigMap/config-features": "knative-serving",
}

// clusterScoped are the kinds that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"CustomResourceDefinition": true, "PersistentVolume": true, "StorageClass": true,
	"PriorityClass": true, "MutatingWebhookConfiguration": true,
	"ValidatingWebhookConfiguration": true, "APIService": true,
	"ClusterDomainClaim": true,
}

// object is one document of a render.
type object struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	// doc is the document as kustomize printed it.
	doc []byte
}

func (o object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}

// group is the API group of the object's apiVersion ("" for the core group).
func (o object) group() string {
	g, _, ok := strings.Cut(o.APIVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// render is the output of kubectl kustomize for one overlay.
type render struct {
	overlay string
	yaml    []byte
	objects []object
}

// all returns the objects of the given apiVersion and kind.
func (r *render) all(apiVersion, kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.APIVersion == apiVersion && o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// find returns the object of the given group, kind, namespace and name, or nil.
func (r *render) find(group, kind, ns, name string) *object {
	for i, o := range r.objects {
		if o.group() == group && o.Kind == kind && o.Namespace == ns && o.Name == name {
			return &r.objects[i]
		}
	}
	return nil
}

// kubectl is the kubectl binary: $KUBECTL (as in the Makefile) or the one on PATH.
func kubectl() (string, error) {
	name := os.Getenv("KUBECTL")
	if name == "" {
		name = "kubectl"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("kubectl is needed to render the overlays (kubectl kustomize, kustomize v5): %w", err)
	}
	return path, nil
}

var renders = map[string]func() (*render, error){}

func init() {
	for _, overlay := range overlays {
		renders[overlay] = sync.OnceValues(func() (*render, error) { return doRender(overlay) })
	}
}

// rendered returns the render of an overlay, made once per test binary.
func rendered(t *testing.T, overlay string) *render {
	t.Helper()
	r, err := renders[overlay]()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func doRender(overlay string) (*render, error) {
	bin, err := kubectl()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join("..", "overlays", overlay)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w\n%s", dir, err, stderr.String())
	}
	objects, err := split(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w", dir, err)
	}
	if len(objects) == 0 {
		return nil, fmt.Errorf("kubectl kustomize %s rendered no object", dir)
	}
	return &render{overlay: overlay, yaml: stdout.Bytes(), objects: objects}, nil
}

// split cuts a multi-document YAML stream into objects.
func split(stream []byte) ([]object, error) {
	reader := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var out []object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(out)+1, err)
		}
		if o.Kind == "" {
			continue
		}
		o.doc = doc
		out = append(out, o)
	}
}

// function is one functions/<dir> with a main.go, and what its func.yaml asks for.
type function struct {
	Dir  string
	Name string `json:"name"`
	// Deploy is the part of func.yaml the manifests are rendered from.
	Deploy struct {
		Subscriptions []struct {
			Source  string            `json:"source"`
			Filters map[string]string `json:"filters"`
		} `json:"subscriptions"`
		Options struct {
			Scale struct {
				Min *int `json:"min"`
			} `json:"scale"`
		} `json:"options"`
	} `json:"deploy"`
}

// functions lists every function directory of the repository.
func functions(t *testing.T) []function {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join("..", "..", "functions", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mains) == 0 {
		t.Fatal("no functions/*/main.go found: run the tests from knative/validate")
	}
	var out []function
	for _, m := range mains {
		dir := filepath.Dir(m)
		f := function{Dir: filepath.Base(dir)}
		raw, err := os.ReadFile(filepath.Join(dir, "func.yaml"))
		if err != nil {
			t.Errorf("function %s: %v", f.Dir, err)
			continue
		}
		if err := yaml.Unmarshal(raw, &f); err != nil {
			t.Errorf("%s/func.yaml: %v", dir, err)
			continue
		}
		if f.Name == "" {
			f.Name = f.Dir
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b function) int { return strings.Compare(a.Dir, b.Dir) })
	return out
}
