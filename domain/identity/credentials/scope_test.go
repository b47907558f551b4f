package credentials_test

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

func TestParseScope(t *testing.T) {
	for scope, want := range map[string][]string{
		"":                                  nil,
		"   ":                               nil,
		"role:abc":                          {"abc"},
		"role:a1 role:b2":                   {"a1", "b2"},
		" role:a1  role:b2 ":                {"a1", "b2"},
		"role:b role:a role:b":              {"b", "a"},
		"role:0f1e2d3c4b5a69788796a5b4c3d2": {"0f1e2d3c4b5a69788796a5b4c3d2"},
		"role:vault.reader role:x_y-z:1":    {"vault.reader", "x_y-z:1"},
		"role:" + strings.Repeat("r", 128):  {strings.Repeat("r", 128)},
	} {
		got, err := credentials.ParseScope(scope)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", scope, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseScope(%q) = %q, want %q", scope, got, want)
		}
	}
}

func TestParseScopeBad(t *testing.T) {
	for scope, bad := range map[string]string{
		"role:":                            "role:",
		"roles:abc":                        "roles:abc",
		"role:a admin":                     "admin",
		"role:a,role:b":                    "role:a,role:b",
		"role:a\trole:b":                   "role:a\trole:b",
		"ROLE:a":                           "ROLE:a",
		"role:-a":                          "role:-a",
		"role:a/b":                         "role:a/b",
		"role:é":                           "role:é",
		"role:" + strings.Repeat("r", 129): "role:" + strings.Repeat("r", 59) + "…",
	} {
		_, err := credentials.ParseScope(scope)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != http.StatusBadRequest {
			t.Errorf("ParseScope(%q): err = %v, want 400", scope, err)
			continue
		}
		if !strings.Contains(ae.Message, strconv.Quote(bad)) {
			t.Errorf("ParseScope(%q): message %q does not name %q", scope, ae.Message, bad)
		}
	}
	many := ""
	for i := range 101 {
		many += " role:r" + strings.Repeat("x", i)
	}
	if _, err := credentials.ParseScope(many); err == nil {
		t.Error("101 roles accepted")
	}
}
