package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/skyflow-oss/skyflow/functions/gateway/respcache"
	"github.com/skyflow-oss/skyflow/functions/gateway/routes"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// cacheKey keys a cached answer by route, path parameters, query and,
// unless the route is shared, the principal and its roles (what a vault
// read shows depends on both).
func cacheKey(r *http.Request, route *routes.Route, params map[string]string, p request.Principal) string {
	key := map[string]string{"?": r.URL.Query().Encode()}
	for k, v := range params {
		key[k] = v
	}
	who := ""
	if !route.Cache.Shared {
		who = p.ID + " " + strings.Join(p.Roles, " ")
	}
	return respcache.Key(route.Name(), key, who)
}

// fromCache answers from the cache when it holds the route's answer: 304
// when the client's If-None-Match names it.
func (f *Function) fromCache(w http.ResponseWriter, r *http.Request, route *routes.Route, key string) bool {
	entry, ok := f.cache.Get(r.Context(), key)
	if !ok {
		w.Header().Set("X-Cache", "miss")
		return false
	}
	w.Header().Set("X-Cache", "hit")
	setCacheHeaders(w, route, entry.ETag)
	if respcache.NotModified(strings.Join(r.Header.Values("If-None-Match"), ", "), entry.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	(&reply{status: entry.Status, contentType: entry.ContentType, body: entry.Body}).write(w)
	return true
}

// storeInCache keeps a successful answer under the route's tags and sets
// its validators; a client that already holds it gets 304.
func (f *Function) storeInCache(ctx context.Context, w http.ResponseWriter, r *http.Request, route *routes.Route, params map[string]string, key string, res *reply) {
	entry := respcache.Entry{Status: res.status, ContentType: res.contentType, Body: res.body, ETag: respcache.ETag(res.body)}
	var tags []string
	for _, t := range route.Cache.Tags {
		for name, value := range params {
			t = strings.ReplaceAll(t, "{"+name+"}", value)
		}
		tags = append(tags, t)
	}
	// A failed store costs the next request a miss, nothing more.
	f.cache.Put(ctx, key, entry, route.Cache.TTL, tags...)
	setCacheHeaders(w, route, entry.ETag)
	if respcache.NotModified(strings.Join(r.Header.Values("If-None-Match"), ", "), entry.ETag) {
		res.status, res.body = http.StatusNotModified, nil
	}
}

func setCacheHeaders(w http.ResponseWriter, route *routes.Route, etag string) {
	w.Header().Set("ETag", etag)
	if route.Cache.Shared {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(route.Cache.TTL.Seconds())))
	} else {
		// Per caller: a browser may keep it but must ask again (304 is cheap).
		w.Header().Set("Cache-Control", "private, no-cache")
		w.Header().Add("Vary", "Authorization")
	}
}
