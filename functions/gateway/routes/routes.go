// Package routes is the gateway's route table (routes.yaml): every public
// path, the function that serves it and the CloudEvent type it takes, who
// may call it, its rate-limit class and whether its answers are cached. It
// loads and checks the table, matches requests against it and describes it
// as an OpenAPI document.
package routes

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Builtin is the route table: data, checked by
// TestRouteTableMatchesTheFunctions against the functions that exist.
//
//go:embed routes.yaml
var Builtin []byte

// Route is one entry of the route table.
type Route struct {
	Method   string   `yaml:"method"`
	Path     string   `yaml:"path"`
	Function string   `yaml:"function"` // "" for the gateway's own answers
	Type     string   `yaml:"type"`     // the CloudEvent type the function takes
	Access   string   `yaml:"access"`   // anonymous | authenticated
	Roles    []string `yaml:"roles"`    // one of them is needed
	Kind     string   `yaml:"kind"`     // user | service_account | "" (either)
	Class    string   `yaml:"class"`    // rate-limit class
	Cache    *Caching `yaml:"cache"`
}

// Caching says how a cacheable route's answers are kept.
type Caching struct {
	TTL    time.Duration `yaml:"ttl"`
	Tags   []string      `yaml:"tags"`   // "vault:{vaultID}": path parameters filled in
	Shared bool          `yaml:"shared"` // one entry for every caller (public documents)
}

// Name names the route in metrics and cache keys: "GET /v1/vaults/{vaultID}".
func (r *Route) Name() string { return r.Method + " " + r.Path }

// Anonymous reports whether the route needs no credential.
func (r *Route) Anonymous() bool { return r.Access == "anonymous" }

// PathParams are the path parameters of the routes and the request
// extension each travels in (runtime/request).
var PathParams = map[string]string{
	"vaultID": "vaultid", "table": "table", "skyflow_id": "skyflowid",
	"userID": "userid", "clientID": "clientid", "keyID": "keyid",
	"webhookID": "webhookid", "subscriptionID": "subscriptionid",
}

// Load reads and checks route tables: the built-in one, then any an
// operator adds for its own functions (SKYFLOW_EXTRA_ROUTES).
func Load(docs ...[]byte) ([]*Route, error) {
	var routes []*Route
	for _, doc := range docs {
		var more []*Route
		if err := yaml.Unmarshal(doc, &more); err != nil {
			return nil, fmt.Errorf("route table: %w", err)
		}
		routes = append(routes, more...)
	}
	seen := map[string]bool{}
	for i, r := range routes {
		where := fmt.Sprintf("route table: route %d (%s)", i+1, r.Name())
		if r.Access == "" {
			r.Access = "authenticated"
		}
		switch {
		case seen[r.Name()]:
			return nil, fmt.Errorf("%s: defined twice", where)
		case !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, r.Method):
			return nil, fmt.Errorf("%s: method %q", where, r.Method)
		case r.Access != "anonymous" && r.Access != "authenticated":
			return nil, fmt.Errorf("%s: access must be anonymous or authenticated", where)
		case r.Anonymous() && (len(r.Roles) > 0 || r.Kind != ""):
			return nil, fmt.Errorf("%s: an anonymous route cannot need roles or a kind of principal", where)
		case r.Kind != "" && r.Kind != "user" && r.Kind != "service_account":
			return nil, fmt.Errorf("%s: kind must be user or service_account", where)
		case r.Class == "":
			return nil, fmt.Errorf("%s: no rate-limit class", where)
		case (r.Function == "") != (r.Type == ""):
			return nil, fmt.Errorf("%s: a function needs an event type, and only a function", where)
		case r.Cache != nil && r.Cache.TTL <= 0:
			return nil, fmt.Errorf("%s: a cached route needs a ttl", where)
		case r.Cache != nil && r.Method != "GET":
			return nil, fmt.Errorf("%s: only GET routes can be cached", where)
		}
		for _, segment := range strings.Split(r.Path, "/") {
			if p, ok := strings.CutPrefix(segment, "{"); ok {
				if _, known := PathParams[strings.TrimSuffix(p, "}")]; !known {
					return nil, fmt.Errorf("%s: path parameter %s has no request extension", where, segment)
				}
			}
		}
		seen[r.Name()] = true
	}
	return routes, nil
}

// Router finds the route of a request with the standard library's
// patterns: the most specific pattern wins, so /v1/vaults/{vaultID}/query
// beats /v1/vaults/{vaultID}/{table}.
type Router struct {
	mux *http.ServeMux
}

// matched is where a route's mux handler reports the match.
type matched struct {
	route  *Route
	params map[string]string
}

type matchKey struct{}

// NewRouter routes requests to routes.
func NewRouter(routes []*Route) *Router {
	rt := &Router{mux: http.NewServeMux()}
	for _, r := range routes {
		rt.mux.HandleFunc(r.Method+" "+r.Path, func(_ http.ResponseWriter, req *http.Request) {
			m := req.Context().Value(matchKey{}).(*matched)
			m.route, m.params = r, map[string]string{}
			for name := range PathParams {
				if v := req.PathValue(name); v != "" {
					m.params[name] = v
				}
			}
		})
	}
	return rt
}

// Match returns the route of req and its path parameters, or nil.
func (rt *Router) Match(req *http.Request) (*Route, map[string]string) {
	m := &matched{}
	rt.mux.ServeHTTP(discard{}, req.WithContext(context.WithValue(req.Context(), matchKey{}, m)))
	return m.route, m.params
}

// discard swallows what the mux writes for a request no route matches.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
