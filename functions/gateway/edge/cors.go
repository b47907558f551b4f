package edge

import (
	"net/http"
	"slices"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// CORS lets browser pages from its origins (SKYFLOW_CORS_ORIGINS, "*"
// for any) call the API.
type CORS struct {
	Origins []string
}

// allowed reports whether a browser page from origin may call the API.
func (c CORS) allowed(origin string) bool {
	return origin != "" && (slices.Contains(c.Origins, origin) || slices.Contains(c.Origins, "*"))
}

// Headers let browser clients from the configured origins read the answer.
func (c CORS) Headers(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if !c.allowed(origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "X-Request-Id, ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset")
}

// IsPreflight reports whether r is a browser's CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// Preflight answers a browser's CORS preflight request.
func (c CORS) Preflight(w http.ResponseWriter, r *http.Request) {
	if !c.allowed(r.Header.Get("Origin")) {
		apierr.Write(w, apierr.PermissionDenied("this origin may not call the API from a browser: add it to SKYFLOW_CORS_ORIGINS"))
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-None-Match, X-Request-Id")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
