package main

import (
	"net/http"
	"slices"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// allowedOrigin reports whether a browser page from origin may call the API.
func (f *Function) allowedOrigin(origin string) bool {
	return origin != "" && (slices.Contains(f.settings.CORSOrigins, origin) || slices.Contains(f.settings.CORSOrigins, "*"))
}

// cors lets browser clients from the configured origins read the answer.
func (f *Function) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if !f.allowedOrigin(origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "X-Request-Id, ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset")
}

// preflight answers a browser's CORS preflight request.
func (f *Function) preflight(w http.ResponseWriter, r *http.Request) {
	if !f.allowedOrigin(r.Header.Get("Origin")) {
		fail(w, apierr.PermissionDenied("this origin may not call the API from a browser: add it to SKYFLOW_CORS_ORIGINS"))
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-None-Match, X-Request-Id")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
