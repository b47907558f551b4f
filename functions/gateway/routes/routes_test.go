package routes

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The route table names only functions that exist, each with the event
// type it accepts, and every function that takes client requests has a
// route: a route to a missing function, or a function without a route,
// fails here.
func TestRouteTableMatchesTheFunctions(t *testing.T) {
	routes, err := Load(Builtin)
	if err != nil {
		t.Fatal(err)
	}
	accepts := regexp.MustCompile(`request\.Accept(?:Anonymous)?\(ctx, e, (\w+)\)`)
	dirs, _ := filepath.Glob("../../*/function.go")
	routed := map[string]string{} // function → type
	for _, r := range routes {
		if r.Function != "" {
			routed[r.Function] = r.Type
		}
	}
	takesRequests := map[string]bool{}
	for _, file := range dirs {
		name := filepath.Base(filepath.Dir(file))
		src, _ := os.ReadFile(file)
		m := accepts.FindSubmatch(src)
		if m == nil {
			continue
		}
		takesRequests[name] = true
		constant := regexp.MustCompile(`\b` + string(m[1]) + `\s*=\s*"([^"]+)"`).FindSubmatch(src)
		if constant == nil {
			t.Errorf("%s: cannot find the value of %s", name, m[1])
			continue
		}
		switch typ, ok := routed[name]; {
		case !ok:
			t.Errorf("%s takes client requests (%s) but no route leads to it", name, constant[1])
		case typ != string(constant[1]):
			t.Errorf("routes.yaml sends %s to %s, which accepts %s", typ, name, constant[1])
		}
	}
	for fn := range routed {
		if !takesRequests[fn] {
			t.Errorf("routes.yaml routes to %s, which is not a function taking client requests", fn)
		}
	}
	if len(takesRequests) < 30 {
		t.Fatalf("found only %d functions taking requests: is the glob right?", len(takesRequests))
	}
}

func TestLoadRoutesRefusesMistakes(t *testing.T) {
	for doc, want := range map[string]string{
		`[{method: GET, path: /a, function: f, type: t, class: data}, {method: GET, path: /a, function: f, type: t, class: data}]`: "defined twice",
		`[{method: FETCH, path: /a, function: f, type: t, class: data}]`:                                                           "method",
		`[{method: GET, path: /a, function: f, type: t}]`:                                                                          "class",
		`[{method: GET, path: "/a/{nope}", function: f, type: t, class: data}]`:                                                    "no request extension",
		`[{method: GET, path: /a, function: f, class: data}]`:                                                                      "event type",
		`[{method: GET, path: /a, function: f, type: t, class: data, access: anonymous, roles: [admin]}]`:                          "anonymous route",
		`[{method: POST, path: /a, function: f, type: t, class: data, cache: {ttl: 1m}}]`:                                          "only GET",
	} {
		if _, err := Load([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}
