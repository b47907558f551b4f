// Package funcyaml reads func.yaml, the per-function project file of Knative
// `func` (schema specVersion 0.36.0), and the root func.yaml that carries
// Skyflow's set-wide defaults.
//
// Decoding is strict, as the func JSON schema is (additionalProperties:
// false everywhere): an unknown field, a field of the wrong type or a key
// given twice is an error that names the file, the line and the field path
// (deploy.options.scale.min). [Function.Validate] checks the rest of the
// schema (patterns, enums, ranges, required fields) and Skyflow's own
// conventions (the skyflow.dev/* annotations, secret templates, filters).
// [Merge] lays a function's func.yaml over the root defaults.
package funcyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Function is one func.yaml: the fields of the Knative func schema.
type Function struct {
	SpecVersion string     `json:"specVersion,omitempty"`
	Name        string     `json:"name,omitempty"`
	Domain      string     `json:"domain,omitempty"`
	Runtime     string     `json:"runtime,omitempty"`
	Registry    string     `json:"registry,omitempty"`
	Image       string     `json:"image,omitempty"`
	Namespace   string     `json:"namespace,omitempty"`
	Created     string     `json:"created,omitempty"`
	Invoke      string     `json:"invoke,omitempty"`
	Build       BuildSpec  `json:"build,omitzero"`
	Run         RunSpec    `json:"run,omitzero"`
	Deploy      DeploySpec `json:"deploy,omitzero"`

	// File is the file the function was read from ("" when built in code).
	// Errors name it.
	File string `json:"-"`
	// lines maps a field path (deploy.options.scale.min) to its line in File.
	lines map[string]int
}

// BuildSpec is how func builds the image. Skyflow builds with ko (make
// deploy), so none of it is rendered; it is checked against the schema.
type BuildSpec struct {
	Git                *Git              `json:"git,omitempty"`
	BuilderImages      map[string]string `json:"builderImages,omitempty"`
	Buildpacks         []string          `json:"buildpacks,omitempty"`
	Builder            string            `json:"builder,omitempty"`
	BuildEnvs          []Env             `json:"buildEnvs,omitempty"`
	PVCSize            string            `json:"pvcSize,omitempty"`
	RemoteStorageClass string            `json:"remoteStorageClass,omitempty"`
}

// Git is the repository of an on-cluster build.
type Git struct {
	URL        string `json:"url,omitempty"`
	Revision   string `json:"revision,omitempty"`
	ContextDir string `json:"contextDir,omitempty"`
}

// Env is an environment variable: a literal, {{ secret:<name>:<key> }} or
// {{ configMap:<name>:<key> }}.
type Env struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// RunSpec is what the function runs with.
type RunSpec struct {
	Volumes            []Volume            `json:"volumes,omitempty"`
	Envs               []Env               `json:"envs,omitempty"`
	PodSecurityContext *PodSecurityContext `json:"podSecurityContext,omitempty"`
	StartTimeout       *int                `json:"startTimeout,omitempty"`
}

// Volume mounts a Secret, a ConfigMap, a PersistentVolumeClaim or an
// emptyDir at Path: exactly one of the four is set.
type Volume struct {
	Secret                string                 `json:"secret,omitempty"`
	ConfigMap             string                 `json:"configMap,omitempty"`
	PersistentVolumeClaim *PersistentVolumeClaim `json:"persistentVolumeClaim,omitempty"`
	EmptyDir              *EmptyDir              `json:"emptyDir,omitempty"`
	Path                  string                 `json:"path,omitempty"`
}

// PersistentVolumeClaim names a claim in the function's namespace.
type PersistentVolumeClaim struct {
	ClaimName string `json:"claimName,omitempty"`
	ReadOnly  *bool  `json:"readOnly,omitempty"`
}

// EmptyDir is a scratch directory that lives as long as the pod.
type EmptyDir struct {
	Medium    string `json:"medium,omitempty"`
	SizeLimit string `json:"sizeLimit,omitempty"`
}

// PodSecurityContext is func's podSecurityContext. Its keys are spelled as
// the func schema spells them (RunAsUser, not runAsUser).
type PodSecurityContext struct {
	RunAsUser    *int64 `json:"RunAsUser,omitempty"`
	RunAsGroup   *int64 `json:"RunAsGroup,omitempty"`
	RunAsNonRoot *bool  `json:"RunAsNonRoot,omitempty"`
	FSGroup      *int64 `json:"FSGroup,omitempty"`
}

// DeploySpec is how the function is deployed: the part the manifests are
// rendered from.
type DeploySpec struct {
	Namespace          string            `json:"namespace,omitempty"`
	Image              string            `json:"image,omitempty"`
	Annotations        map[string]string `json:"annotations,omitempty"`
	Options            Options           `json:"options,omitzero"`
	Labels             []Label           `json:"labels,omitempty"`
	HealthEndpoints    HealthEndpoints   `json:"healthEndpoints,omitzero"`
	ServiceAccountName string            `json:"serviceAccountName,omitempty"`
	Subscriptions      []Subscription    `json:"subscriptions,omitempty"`
}

// Options are scaling and resources.
type Options struct {
	Scale     ScaleOptions     `json:"scale,omitzero"`
	Resources ResourcesOptions `json:"resources,omitzero"`
}

// ScaleOptions become the autoscaling.knative.dev annotations.
type ScaleOptions struct {
	Min         *int     `json:"min,omitempty"`
	Max         *int     `json:"max,omitempty"`
	Metric      string   `json:"metric,omitempty"`
	Target      *float64 `json:"target,omitempty"`
	Utilization *float64 `json:"utilization,omitempty"`
}

// ResourcesOptions are the container's requests and limits.
type ResourcesOptions struct {
	Requests ResourceRequests `json:"requests,omitzero"`
	Limits   ResourceLimits   `json:"limits,omitzero"`
}

// ResourceRequests are Kubernetes quantities (50m, 64Mi).
type ResourceRequests struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// ResourceLimits are Kubernetes quantities, and the most requests one
// instance handles at once (containerConcurrency; 0 is no limit).
type ResourceLimits struct {
	CPU         string `json:"cpu,omitempty"`
	Memory      string `json:"memory,omitempty"`
	Concurrency *int   `json:"concurrency,omitempty"`
}

// Label is a label of the Knative Service.
type Label struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

// HealthEndpoints are the paths of the readiness and liveness probes.
type HealthEndpoints struct {
	Liveness  string `json:"liveness,omitempty"`
	Readiness string `json:"readiness,omitempty"`
}

// Subscription is one Trigger: the events of Broker Source that pass
// Filters (CloudEvents attribute → value).
type Subscription struct {
	Source  string            `json:"source,omitempty"`
	Filters map[string]string `json:"filters,omitempty"`
}

// FieldError is a problem with one field of one func.yaml.
type FieldError struct {
	File  string
	Line  int // 0 when unknown
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and strictly decodes the func.yaml at path. It does not
// validate the values: call [Function.Validate].
func Load(path string) (*Function, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, raw)
}

// Parse strictly decodes func.yaml content; file names it in errors.
func Parse(file string, raw []byte) (*Function, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: file, Msg: "the file is empty"}
		}
		return nil, fmt.Errorf("%s: not valid YAML: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: file, Line: extra.Line, Msg: "a func.yaml holds one YAML document, found a second one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: not valid YAML: %w", file, err)
	}
	f := &Function{File: file}
	d := &decoder{file: file, lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &FieldError{File: file, Msg: "the file is empty"}
	}
	d.value(root, reflect.ValueOf(f).Elem(), "")
	if err := errors.Join(d.errs...); err != nil {
		return nil, err
	}
	f.lines = d.lines
	return f, nil
}

// decoder fills a struct from a YAML node tree by the structs' json tags,
// refusing what the struct does not have.
type decoder struct {
	file  string
	lines map[string]int
	errs  []error
}

// errorf reports a problem with the field at path: on the line of its key
// when it has one (a list or mapping starts on the line after), else of n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	line := n.Line
	if l, ok := d.lines[path]; ok && path != "" {
		line = l
	}
	d.errorAt(line, path, format, args...)
}

func (d *decoder) errorAt(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Field: pathOr(path), Msg: fmt.Sprintf(format, args...)})
}

// fields returns the json names of a struct type's fields and their indexes.
func fields(t reflect.Type) (map[string]int, []string) {
	byName := map[string]int{}
	var names []string
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		byName[name] = i
		names = append(names, name)
	}
	return byName, names
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// describe names what a node is, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return fmt.Sprintf("the number %s", n.Value)
	case "!!bool":
		return fmt.Sprintf("the boolean %s", n.Value)
	case "!!str", "!!timestamp":
		return fmt.Sprintf("the string %q", n.Value)
	}
	return fmt.Sprintf("%q (%s)", n.Value, n.ShortTag())
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value is an unset one
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "is %s, want a mapping", describe(n))
			return
		}
		byName, names := fields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "a key is %s, want a field name", describe(k))
				continue
			}
			sub := join(path, k.Value)
			if seen[k.Value] {
				d.errorAt(k.Line, sub, "is given twice (first on line %d)", d.lines[sub])
				continue
			}
			seen[k.Value] = true
			d.lines[sub] = k.Line // a list or mapping starts on the line after its key
			idx, ok := byName[k.Value]
			if !ok {
				d.errorf(k, sub, "unknown field (%s has only %s)", pathOr(path), strings.Join(names, ", "))
				continue
			}
			d.value(val, v.Field(idx), sub)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "is %s, want a mapping of strings", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "a key is %s, want a string", describe(k))
				continue
			}
			sub := path + "[" + k.Value + "]"
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorAt(k.Line, sub, "is given twice (first on line %d)", d.lines[sub])
				continue
			}
			d.lines[sub] = k.Line
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(val, elem, sub)
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		}
		v.Set(m)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "is %s, want a list", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		// A date-time such as created is a YAML timestamp when unquoted:
		// its text is what counts.
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
			hint := ""
			if n.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf(" (quote it: %q)", n.Value)
			}
			d.errorf(n, path, "is %s, want a string%s", describe(n), hint)
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.errorf(n, path, "is %s, want an integer", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") ||
			n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "is %s, want a number", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "is %s, want true or false", describe(n))
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("funcyaml: no decoding for %s", v.Type()))
	}
}

func pathOr(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

// line returns the line of a field path in the function's file, or of its
// closest parent that is in the file (0 when none is: a missing top-level
// field).
func (f *Function) line(path string) int {
	for path != "" {
		if l, ok := f.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Errorf returns an error about the field at path (deploy.options.scale.min)
// of f, naming its file and line.
func (f *Function) Errorf(path, format string, args ...any) error {
	return f.fieldError(path, format, args...)
}

func (f *Function) fieldError(path, format string, args ...any) *FieldError {
	file := f.File
	if file == "" {
		file = "func.yaml"
	}
	return &FieldError{File: file, Line: f.line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}
