package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/runtime/config"
)

func TestValues(t *testing.T) {
	env := config.FromMap(map[string]string{
		"NAME":    "  vault  ",
		"REQ":     "x",
		"N":       "42",
		"D":       "1m30s",
		"B1":      "yes",
		"B2":      "OFF",
		"B3":      "1",
		"B4":      "false",
		"DB":      "postgres://u:p@db.example:5432/skyflow",
		"SINK":    "https://broker.example/ns/default",
		"NEG_INT": "-3",
	})
	if got := env.String("NAME", "def"); got != "vault" {
		t.Errorf("String = %q, want trimmed %q", got, "vault")
	}
	if got := env.String("MISSING", "def"); got != "def" {
		t.Errorf("String default = %q", got)
	}
	if got := env.Required("REQ", "something"); got != "x" {
		t.Errorf("Required = %q", got)
	}
	if got := env.Int("N", 7); got != 42 {
		t.Errorf("Int = %d", got)
	}
	if got := env.Int("NEG_INT", 7); got != -3 {
		t.Errorf("Int negative = %d", got)
	}
	if got := env.Int("MISSING", 7); got != 7 {
		t.Errorf("Int default = %d", got)
	}
	if got := env.Duration("D", time.Second); got != 90*time.Second {
		t.Errorf("Duration = %v", got)
	}
	if got := env.Duration("MISSING", time.Second); got != time.Second {
		t.Errorf("Duration default = %v", got)
	}
	for name, want := range map[string]bool{"B1": true, "B2": false, "B3": true, "B4": false} {
		if got := env.Bool(name, !want); got != want {
			t.Errorf("Bool(%s) = %v, want %v", name, got, want)
		}
	}
	if got := env.Bool("MISSING", true); got != true {
		t.Errorf("Bool default = %v", got)
	}
	u := env.URL("DB", "postgres", "postgresql")
	if u == nil || u.Host != "db.example:5432" || u.Path != "/skyflow" {
		t.Errorf("URL = %v", u)
	}
	if u := env.URL("SINK", "http", "https"); u == nil || u.String() != "https://broker.example/ns/default" {
		t.Errorf("URL = %v", u)
	}
	if u := env.URL("MISSING", "http"); u != nil {
		t.Errorf("URL of unset = %v, want nil", u)
	}
	if err := env.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	env := config.FromMap(map[string]string{
		"COUNT":   "ten",
		"TIMEOUT": "soon",
		"NEGDUR":  "-5s",
		"FLAG":    "maybe",
		"SINK":    "not a url",
	})
	env.Required("DATABASE_URL", "the database")
	env.Int("COUNT", 1)
	env.Duration("TIMEOUT", time.Second)
	env.Duration("NEGDUR", time.Second)
	env.Bool("FLAG", false)
	env.URL("SINK", "http", "https")
	err := env.Err()
	if err == nil {
		t.Fatal("Err = nil, want every problem")
	}
	msg := err.Error()
	for _, name := range []string{"DATABASE_URL", "COUNT", "TIMEOUT", "NEGDUR", "FLAG", "SINK"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not name %s: %s", name, msg)
		}
	}
	// The malformed values (not URLs) are quoted so the operator sees them.
	for _, v := range []string{`"ten"`, `"soon"`, `"maybe"`} {
		if !strings.Contains(msg, v) {
			t.Errorf("error does not quote %s: %s", v, msg)
		}
	}
	if strings.Contains(msg, "not a url") {
		t.Errorf("URL error echoes the value: %s", msg)
	}
	// One line per problem.
	if n := strings.Count(msg, "\n") + 1; n != 6 {
		t.Errorf("error has %d lines, want 6: %s", n, msg)
	}
}

func TestErrOnlyForProblems(t *testing.T) {
	env := config.FromMap(map[string]string{"A": "1"})
	if env.Int("A", 0); env.Err() != nil {
		t.Fatalf("Err = %v", env.Err())
	}
	env.Int("B_BAD", 0) // unset: default, no error
	if env.Err() != nil {
		t.Fatalf("Err = %v", env.Err())
	}
}

func TestURLErrorHidesPassword(t *testing.T) {
	for _, c := range []struct {
		value   string
		schemes []string
	}{
		{"postgres://u:s3cret@h/db", []string{"http", "https"}},          // wrong scheme
		{"mysql://u:s3cret@h/db", []string{"postgres", "postgresql"}},    // wrong scheme
		{"postgres://u:s3cret@/db", []string{"postgres"}},                // no host
		{"postgres://u:s3cret@h:bad port/db", []string{"postgres"}},      // unparseable
		{"u:s3cret@h/db", []string{"postgres"}},                          // not absolute
		{"postgres://u:s3cret@h%zz/db", []string{"postgres", "postgre"}}, // bad escape
	} {
		env := config.FromMap(map[string]string{"DATABASE_URL": c.value})
		if u := env.URL("DATABASE_URL", c.schemes...); u != nil {
			t.Errorf("URL(%q) = %v, want nil", c.value, u)
		}
		err := env.Err()
		if err == nil {
			t.Errorf("URL(%q): no error", c.value)
			continue
		}
		if !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("error does not name the variable: %v", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestURLWrongSchemeSaysWhat(t *testing.T) {
	env := config.FromMap(map[string]string{"K_SINK": "ftp://broker"})
	env.URL("K_SINK", "http", "https")
	err := env.Err()
	if err == nil || !strings.Contains(err.Error(), "http or https") {
		t.Errorf("Err = %v, want it to say http or https", err)
	}
}

func TestWhitespaceIsUnset(t *testing.T) {
	env := config.FromMap(map[string]string{
		"S": "   ", "R": " \t\n", "I": "  ", "D": "\t", "B": " ", "U": "  ",
	})
	if got := env.String("S", "def"); got != "def" {
		t.Errorf("String = %q, want default", got)
	}
	if got := env.Int("I", 5); got != 5 {
		t.Errorf("Int = %d, want default", got)
	}
	if got := env.Duration("D", time.Minute); got != time.Minute {
		t.Errorf("Duration = %v, want default", got)
	}
	if got := env.Bool("B", true); !got {
		t.Errorf("Bool = %v, want default", got)
	}
	if got := env.URL("U", "http"); got != nil {
		t.Errorf("URL = %v, want nil", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("Err = %v before Required", err)
	}
	env.Required("R", "a thing")
	err := env.Err()
	if err == nil || !strings.Contains(err.Error(), "R: is not set") {
		t.Errorf("Err = %v, want R not set", err)
	}
}

func TestEnvironReflectsSetenv(t *testing.T) {
	t.Setenv("SKYFLOW_CONFIG_TEST_VAR", "a=b=c")
	m := config.Environ()
	if got := m["SKYFLOW_CONFIG_TEST_VAR"]; got != "a=b=c" {
		t.Errorf("Environ()[...] = %q, want %q", got, "a=b=c")
	}
	if got := config.FromMap(m).String("SKYFLOW_CONFIG_TEST_VAR", ""); got != "a=b=c" {
		t.Errorf("FromMap(Environ()) = %q", got)
	}
	env := config.FromEnviron()
	env.Int("SKYFLOW_CONFIG_TEST_VAR", 1)
	if err := env.Err(); err == nil || !strings.Contains(err.Error(), "SKYFLOW_CONFIG_TEST_VAR") {
		t.Errorf("FromEnviron did not read the variable: %v", err)
	}
	if _, in := config.Environ()["SKYFLOW_CONFIG_TEST_UNSET"]; in {
		t.Error("Environ has an unset variable")
	}
}
