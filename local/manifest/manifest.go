// Package manifest reads the Knative manifests that the local platform runs
// from: Serving Services, Eventing Brokers and Triggers, and PingSources.
//
// It decodes only the fields the local runtime acts on and checks them with
// errors that name the file, the object and the field. Full validation with
// Knative's own code lives in the tests, so Knative's dependencies stay out
// of the binaries.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Set is every object found in a set of manifest directories.
type Set struct {
	Services    []Service
	Brokers     []Broker
	Triggers    []Trigger
	PingSources []PingSource
}

// Service returns the Service with the given name, or nil.
func (s *Set) Service(name string) *Service {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// Broker returns the Broker with the given name, or nil.
func (s *Set) Broker(name string) *Broker {
	for i := range s.Brokers {
		if s.Brokers[i].Name == name {
			return &s.Brokers[i]
		}
	}
	return nil
}

// object is the part of every Kubernetes object that says what it is.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// Meta is the identity of a decoded object and where it came from.
type Meta struct {
	File        string
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
}

// where names the object in error messages.
func (m Meta) where(kind string) string {
	return fmt.Sprintf("%s: %s %q", m.File, kind, m.Name)
}

// DefaultNamespace is used for objects that do not name one.
const DefaultNamespace = "skyflow"

// Load reads every *.yaml and *.yml file below the given directories.
// Kustomize files and overlay directories are skipped (the local platform
// runs the base), as are kinds the local runtime does not act on.
func Load(dirs ...string) (*Set, error) {
	set := &Set{}
	var errs []error
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "overlays" {
					return filepath.SkipDir
				}
				return nil
			}
			ext := filepath.Ext(path)
			if (ext != ".yaml" && ext != ".yml") || strings.HasPrefix(d.Name(), "kustomization.") {
				return nil
			}
			errs = append(errs, set.loadFile(path))
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reading manifests in %s: %w", dir, err))
		}
	}
	errs = append(errs, set.check())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

func (s *Set) loadFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var errs []error
	docs := splitDocuments(raw)
	for i, doc := range docs {
		if err := s.loadDocument(path, doc); err != nil {
			if len(docs) > 1 {
				err = fmt.Errorf("document %d: %w", i+1, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Set) loadDocument(path string, doc []byte) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil
	}
	var obj object
	if err := json.Unmarshal(js, &obj); err != nil {
		return fmt.Errorf("%s: not a Kubernetes object: %w", path, err)
	}
	meta := Meta{File: path, Name: obj.Metadata.Name, Namespace: obj.Metadata.Namespace,
		Labels: obj.Metadata.Labels, Annotations: obj.Metadata.Annotations}
	if meta.Namespace == "" {
		meta.Namespace = DefaultNamespace
	}
	decode := func(kind string, into any) error {
		if !validName.MatchString(meta.Name) {
			return fmt.Errorf("%s: %s: metadata.name %q must be a DNS-1035 label (lower-case letters, digits and '-')", path, kind, meta.Name)
		}
		if err := json.Unmarshal(js, into); err != nil {
			return fmt.Errorf("%s: field of the wrong type: %w", meta.where(kind), err)
		}
		return nil
	}
	switch {
	case obj.Kind == "Service" && strings.HasPrefix(obj.APIVersion, "serving.knative.dev/"):
		var raw serviceYAML
		if err := decode(obj.Kind, &raw); err != nil {
			return err
		}
		svc, err := raw.service(meta)
		if err != nil {
			return err
		}
		s.Services = append(s.Services, svc)
	case obj.Kind == "Broker" && strings.HasPrefix(obj.APIVersion, "eventing.knative.dev/"):
		var raw brokerYAML
		if err := decode(obj.Kind, &raw); err != nil {
			return err
		}
		b, err := raw.broker(meta)
		if err != nil {
			return err
		}
		s.Brokers = append(s.Brokers, b)
	case obj.Kind == "Trigger" && strings.HasPrefix(obj.APIVersion, "eventing.knative.dev/"):
		var raw triggerYAML
		if err := decode(obj.Kind, &raw); err != nil {
			return err
		}
		t, err := raw.trigger(meta)
		if err != nil {
			return err
		}
		s.Triggers = append(s.Triggers, t)
	case obj.Kind == "PingSource" && strings.HasPrefix(obj.APIVersion, "sources.knative.dev/"):
		var raw pingSourceYAML
		if err := decode(obj.Kind, &raw); err != nil {
			return err
		}
		p, err := raw.pingSource(meta)
		if err != nil {
			return err
		}
		s.PingSources = append(s.PingSources, p)
	case obj.Kind == "":
		return fmt.Errorf("%s: object without a kind", path)
	}
	return nil
}

// check validates references between objects: names are unique per kind and
// every Service, Broker or sink a manifest names exists.
func (s *Set) check() error {
	var errs []error
	seen := map[string]string{}
	unique := func(kind string, m Meta) {
		key := kind + "/" + m.Namespace + "/" + m.Name
		if first, ok := seen[key]; ok {
			errs = append(errs, fmt.Errorf("%s: %s %q is also defined in %s", m.File, kind, m.Name, first))
		}
		seen[key] = m.File
	}
	for _, x := range s.Services {
		unique("Service", x.Meta)
	}
	for _, x := range s.Brokers {
		unique("Broker", x.Meta)
		errs = append(errs, s.checkDelivery(x.where("Broker"), "spec.delivery", x.Delivery))
	}
	for _, x := range s.Triggers {
		unique("Trigger", x.Meta)
		where := x.where("Trigger")
		if s.Broker(x.Broker) == nil {
			errs = append(errs, fmt.Errorf("%s: spec.broker: no Broker %q in the manifests", where, x.Broker))
		}
		errs = append(errs, s.checkDestination(where, "spec.subscriber", x.Subscriber))
		errs = append(errs, s.checkDelivery(where, "spec.delivery", x.Delivery))
	}
	for _, x := range s.PingSources {
		unique("PingSource", x.Meta)
		errs = append(errs, s.checkDestination(x.where("PingSource"), "spec.sink", x.Sink))
	}
	return errors.Join(errs...)
}

func (s *Set) checkDelivery(where, field string, d *Delivery) error {
	if d == nil || d.DeadLetterSink == nil {
		return nil
	}
	return s.checkDestination(where, field+".deadLetterSink", *d.DeadLetterSink)
}

func (s *Set) checkDestination(where, field string, d Destination) error {
	if d.Ref == nil {
		return nil
	}
	switch d.Ref.Kind {
	case "Service":
		if s.Service(d.Ref.Name) == nil {
			return fmt.Errorf("%s: %s.ref: no Service %q in the manifests", where, field, d.Ref.Name)
		}
	case "Broker":
		if s.Broker(d.Ref.Name) == nil {
			return fmt.Errorf("%s: %s.ref: no Broker %q in the manifests", where, field, d.Ref.Name)
		}
	}
	return nil
}

var validName = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// splitDocuments splits a multi-document YAML file on its "---" lines.
func splitDocuments(raw []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for line := range bytes.Lines(raw) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) {
			docs = append(docs, slices.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	docs = append(docs, cur.Bytes())
	return slices.DeleteFunc(docs, func(d []byte) bool { return len(bytes.TrimSpace(d)) == 0 })
}
