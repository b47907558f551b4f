// Package config reads a function's settings from environment variables
// (or the map Knative's func runtime hands to Start) and reports every
// missing or malformed one at once, by name, with what was expected.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads variables and collects what was wrong with them.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// FromEnviron reads the process environment.
func FromEnviron() *Env { return &Env{lookup: os.LookupEnv} }

// FromMap reads a map such as the cfg given to a function's Start.
func FromMap(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// Environ returns the process environment as a map.
func Environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (e *Env) fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String is the variable's value, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// Required is the variable's value; an unset one is an error.
func (e *Env) Required(name, what string) string {
	v, ok := e.get(name)
	if !ok {
		e.fail(name, "is not set; it must name %s", what)
	}
	return v
}

// Int is a whole number, def when unset.
func (e *Env) Int(name string, def int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, "%q is not a whole number", v)
	}
	return n
}

// Duration is a Go duration such as 30s or 1m30s, def when unset.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.fail(name, "%q is not a duration such as 30s or 2m", v)
	}
	return d
}

// Bool is true/false (1/0, yes/no), def when unset.
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	e.fail(name, "%q is not true or false", v)
	return def
}

// URL is an absolute URL with one of the given schemes; nil when unset.
// The value is never echoed in errors: URLs may carry passwords.
func (e *Env) URL(name string, schemes ...string) *url.URL {
	v, ok := e.get(name)
	if !ok {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		e.fail(name, "is not an absolute URL (%s://host…)", strings.Join(schemes, " or "))
		return nil
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return u
		}
	}
	e.fail(name, "has scheme %q; want %s", u.Scheme, strings.Join(schemes, " or "))
	return nil
}

// Err is every problem found so far, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(e.errs...))
}
