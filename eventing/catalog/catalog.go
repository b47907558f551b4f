// Package catalog is the event catalog: one JSON Schema per event type that
// Skyflow functions emit, named <type>.json beside this file. Tests
// validate the events functions really emit against it; it is never linked
// into a function.
package catalog

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.json
var files embed.FS

var (
	load    sync.Once
	schemas map[string]*jsonschema.Schema
	loadErr error
)

func compile() {
	schemas = map[string]*jsonschema.Schema{}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, _ := fs.Glob(files, "*.json")
	for _, name := range names {
		raw, _ := files.ReadFile(name)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = fmt.Errorf("%s: %w", name, err)
			return
		}
		if err := c.AddResource(name, doc); err != nil {
			loadErr = fmt.Errorf("%s: %w", name, err)
			return
		}
		s, err := c.Compile(name)
		if err != nil {
			loadErr = fmt.Errorf("%s: %w", name, err)
			return
		}
		schemas[strings.TrimSuffix(name, ".json")] = s
	}
}

// Types lists the event types in the catalog, sorted.
func Types() ([]string, error) {
	load.Do(compile)
	if loadErr != nil {
		return nil, loadErr
	}
	types := make([]string, 0, len(schemas))
	for t := range schemas {
		types = append(types, t)
	}
	slices.Sort(types)
	return types, nil
}

// Validate checks an event, in its structured-mode JSON form, against the
// schema of its type; a type without a schema is an error.
func Validate(e event.Event) error {
	load.Do(compile)
	if loadErr != nil {
		return loadErr
	}
	s, ok := schemas[e.Type()]
	if !ok {
		return fmt.Errorf("event type %q is not in the catalog (eventing/catalog/%s.json)", e.Type(), e.Type())
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("event %s of type %s does not match its schema: %w", e.ID(), e.Type(), err)
	}
	return nil
}
