package cache

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/functions/gateway/routes"
	"github.com/skyflow-oss/skyflow/functions/gateway/upstream"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// RequestKey keys a cached answer by route, path parameters, query and,
// unless the route is shared, the principal and its roles (what a vault
// read shows depends on both).
func RequestKey(r *http.Request, route *routes.Route, params map[string]string, p request.Principal) string {
	key := map[string]string{"?": r.URL.Query().Encode()}
	for k, v := range params {
		key[k] = v
	}
	who := ""
	if !route.Cache.Shared {
		who = p.ID + " " + strings.Join(p.Roles, " ")
	}
	return Key(route.Name(), key, who)
}

// Answer answers from the cache when it holds the route's answer: 304
// when the client's If-None-Match names it.
func (c *Cache) Answer(w http.ResponseWriter, r *http.Request, route *routes.Route, key string) bool {
	entry, ok := c.Get(r.Context(), key)
	if !ok {
		w.Header().Set("X-Cache", "miss")
		return false
	}
	w.Header().Set("X-Cache", "hit")
	setHeaders(w, route, entry.ETag)
	if NotModified(strings.Join(r.Header.Values("If-None-Match"), ", "), entry.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	(&upstream.Reply{Status: entry.Status, ContentType: entry.ContentType, Body: entry.Body}).Write(w)
	return true
}

// Keep keeps a successful answer under the route's tags and sets its
// validators; a client that already holds it gets 304.
func (c *Cache) Keep(ctx context.Context, w http.ResponseWriter, r *http.Request, route *routes.Route, params map[string]string, key string, res *upstream.Reply) {
	entry := Entry{Status: res.Status, ContentType: res.ContentType, Body: res.Body, ETag: ETag(res.Body)}
	var tags []string
	for _, t := range route.Cache.Tags {
		for name, value := range params {
			t = strings.ReplaceAll(t, "{"+name+"}", value)
		}
		tags = append(tags, t)
	}
	// A failed store costs the next request a miss, nothing more; Put
	// counts it in the cache's metrics.
	_ = c.Put(ctx, key, entry, route.Cache.TTL, tags...)
	setHeaders(w, route, entry.ETag)
	if NotModified(strings.Join(r.Header.Values("If-None-Match"), ", "), entry.ETag) {
		res.Status, res.Body = http.StatusNotModified, nil
	}
}

func setHeaders(w http.ResponseWriter, route *routes.Route, etag string) {
	w.Header().Set("ETag", etag)
	if route.Cache.Shared {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(route.Cache.TTL.Seconds())))
	} else {
		// Per caller: a browser may keep it but must ask again (304 is cheap).
		w.Header().Set("Cache-Control", "private, no-cache")
		w.Header().Add("Vary", "Authorization")
	}
}

// StaleTags names the cache tags an event makes stale: the gateway's
// Triggers deliver these events (func.yaml).
func StaleTags(e event.Event) []string {
	switch e.Type() {
	case "com.skyflow.vault.schema.updated", "com.skyflow.vault.policy.updated", "com.skyflow.vault.deleted":
		if id := request.Extension(e, request.ExtVaultID); id != "" {
			return []string{"vault:" + id}
		}
	}
	return nil
}
