package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/functions/gateway/cache"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

var ctx = context.Background()

// newCache returns a cache on the test's Redis, the client, the prefix and
// the registry holding its metrics.
func newCache(t *testing.T) (*cache.Cache, *redis.Client, string, *prometheus.Registry) {
	t.Helper()
	client, prefix := testenv.Redis(t)
	reg := prometheus.NewRegistry()
	// A generous timeout: the tests check behaviour, not a loaded CI
	// machine's Redis latency.
	return cache.New(client, prefix, cache.Options{Timeout: 5 * time.Second, Metrics: reg}), client, prefix, reg
}

// entryName and tagName are the documented Redis layout.
func entryName(prefix, key string) string { return prefix + "cache:" + key[len(key)-64:] }

func tagName(prefix, tag string) string {
	sum := sha256.Sum256([]byte(tag))
	return prefix + "cachetag:" + hex.EncodeToString(sum[:])
}

// redisKeys lists the keys under prefix, sorted.
func redisKeys(t *testing.T, client *redis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	slices.Sort(keys)
	return keys
}

func put(t *testing.T, c *cache.Cache, key string, e cache.Entry, ttl time.Duration, tags ...string) {
	t.Helper()
	if err := c.Put(ctx, key, e, ttl, tags...); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func mustHit(t *testing.T, c *cache.Cache, key string) *cache.Entry {
	t.Helper()
	e, ok := c.Get(ctx, key)
	if !ok || e == nil {
		t.Fatalf("Get(%s) = miss, want hit", key)
	}
	return e
}

func mustMiss(t *testing.T, c *cache.Cache, key string) {
	t.Helper()
	if e, ok := c.Get(ctx, key); ok || e != nil {
		t.Fatalf("Get(%s) = %+v, %v, want miss", key, e, ok)
	}
}

// counter returns the value of the counter name with exactly labels, 0 if
// there is none.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMissPutHit(t *testing.T) {
	c, _, _, reg := newCache(t)
	key := cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, "user-1")
	mustMiss(t, c, key)

	body := []byte(`{"tables":[{"name":"persons"}]}`)
	before := time.Now()
	put(t, c, key, cache.Entry{Status: 200, ContentType: "application/json", Body: body}, time.Minute, "vault:v1")
	after := time.Now()

	e := mustHit(t, c, key)
	if e.Status != 200 || e.ContentType != "application/json" || !bytes.Equal(e.Body, body) {
		t.Errorf("Get = {%d %q %q}, want {200 application/json %q}", e.Status, e.ContentType, e.Body, body)
	}
	if want := cache.ETag(body); e.ETag != want {
		t.Errorf("ETag = %s, want ETag(body) = %s (filled by Put)", e.ETag, want)
	}
	if e.Stored.Before(before.Truncate(time.Nanosecond)) || e.Stored.After(after) {
		t.Errorf("Stored = %v, want between %v and %v", e.Stored, before, after)
	}

	// A given ETag, Stored time and an empty body are kept as they are.
	key2 := cache.Key("jwks", nil, "")
	stored := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	put(t, c, key2, cache.Entry{Status: 203, ETag: `W/"v7"`, Stored: stored}, time.Minute)
	e = mustHit(t, c, key2)
	if e.Status != 203 || e.ContentType != "" || len(e.Body) != 0 || e.ETag != `W/"v7"` || !e.Stored.Equal(stored) {
		t.Errorf("Get = %+v, want status 203, no content type or body, ETag W/\"v7\", stored %v", e, stored)
	}

	for _, tc := range []struct {
		route, result string
		want          float64
	}{
		{"vault.schema.get", "miss", 1},
		{"vault.schema.get", "hit", 1},
		{"jwks", "hit", 1},
		{"vault.schema.get", "error", 0},
	} {
		got := counter(t, reg, "skyflow_gateway_cache_requests_total", map[string]string{"route": tc.route, "result": tc.result})
		if got != tc.want {
			t.Errorf("requests_total{route=%s,result=%s} = %v, want %v", tc.route, tc.result, got, tc.want)
		}
	}
	if got := counter(t, reg, "skyflow_gateway_cache_stores_total", map[string]string{"route": "jwks", "result": "ok"}); got != 1 {
		t.Errorf("stores_total{route=jwks,result=ok} = %v, want 1", got)
	}
}

func TestKey(t *testing.T) {
	base := cache.Key("vault.schema.get", map[string]string{"vault_id": "v1", "q.limit": "10"}, "user-1")
	if !regexp.MustCompile(`^vault\.schema\.get:[0-9a-f]{64}$`).MatchString(base) {
		t.Fatalf("Key = %q, want route:<64 hex>", base)
	}

	// The same inputs, maps built in a different order: the same key, every
	// time (map iteration order changes from one range to the next).
	for range 50 {
		m := map[string]string{}
		m["q.limit"] = "10"
		m["vault_id"] = "v1"
		if k := cache.Key("vault.schema.get", m, "user-1"); k != base {
			t.Fatalf("Key with params inserted in another order = %s, want %s", k, base)
		}
	}

	differ := map[string]string{
		"principal":          cache.Key("vault.schema.get", map[string]string{"vault_id": "v1", "q.limit": "10"}, "user-2"),
		"anonymous":          cache.Key("vault.schema.get", map[string]string{"vault_id": "v1", "q.limit": "10"}, ""),
		"param value":        cache.Key("vault.schema.get", map[string]string{"vault_id": "v2", "q.limit": "10"}, "user-1"),
		"param name":         cache.Key("vault.schema.get", map[string]string{"vault": "v1", "q.limit": "10"}, "user-1"),
		"fewer params":       cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, "user-1"),
		"more params":        cache.Key("vault.schema.get", map[string]string{"vault_id": "v1", "q.limit": "10", "q.x": ""}, "user-1"),
		"route":              cache.Key("vault.schema.list", map[string]string{"vault_id": "v1", "q.limit": "10"}, "user-1"),
		"boundary name=val":  cache.Key("vault.schema.get", map[string]string{"vault_id": "v1", "q.limit1": "0"}, "user-1"),
		"principal as param": cache.Key("vault.schema.get", map[string]string{"vault_id": "v1", "q.limit": "10user-1"}, ""),
	}
	seen := map[string]string{base: "base"}
	for name, k := range differ {
		if other, dup := seen[k]; dup {
			t.Errorf("Key for %q = Key for %q = %s, want different", name, other, k)
		}
		seen[k] = name
	}

	// Encoding is unambiguous where plain concatenation would not be.
	pairs := [][2]string{
		{cache.Key("a", map[string]string{"b": "c"}, ""), cache.Key("a", map[string]string{"bc": ""}, "")},
		{cache.Key("a", nil, "bc"), cache.Key("a", map[string]string{"b": "c"}, "")},
		{cache.Key("ab", nil, "c"), cache.Key("a", nil, "bc")},
		{cache.Key("a", nil, ""), cache.Key("a", map[string]string{"": ""}, "")},
	}
	for i, p := range pairs {
		if p[0] == p[1] {
			t.Errorf("pair %d: both keys are %s, want different", i, p[0])
		}
	}
	// nil and empty params are the same thing.
	if a, b := cache.Key("jwks", nil, ""), cache.Key("jwks", map[string]string{}, ""); a != b {
		t.Errorf("Key with nil params = %s, with empty params = %s, want equal", a, b)
	}
}

// Different keys are different entries in Redis, not just different strings.
func TestKeysSeparateEntries(t *testing.T) {
	c, _, _, _ := newCache(t)
	keys := []string{
		cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, "alice"),
		cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, "bob"),
		cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, ""),
		cache.Key("vault.schema.get", map[string]string{"vault_id": "v2"}, "alice"),
		cache.Key("openapi", map[string]string{"vault_id": "v1"}, "alice"),
	}
	for i, k := range keys {
		put(t, c, k, cache.Entry{Status: 200, Body: []byte(fmt.Sprint("body ", i))}, time.Minute)
	}
	for i, k := range keys {
		if e := mustHit(t, c, k); string(e.Body) != fmt.Sprint("body ", i) {
			t.Errorf("Get(keys[%d]) body = %q, want %q", i, e.Body, fmt.Sprint("body ", i))
		}
	}
}

func TestTTL(t *testing.T) {
	c, client, prefix, _ := newCache(t)
	key := cache.Key("jwks", nil, "")
	ttl := 300 * time.Millisecond
	put(t, c, key, cache.Entry{Status: 200, Body: []byte("keys")}, ttl, "jwks")

	// The tag set's TTL is read first: what is left of it then is at
	// least what is left of the entry's a moment later if, and only if,
	// the set expires no earlier than the entry (read the other way round,
	// the time between the reads counts against the set).
	tagTTL, err := client.PTTL(ctx, tagName(prefix, "jwks")).Result()
	if err != nil {
		t.Fatal(err)
	}
	pttl, err := client.PTTL(ctx, entryName(prefix, key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 0 || pttl > ttl {
		t.Errorf("PTTL of the entry = %v, want in (0, %v]", pttl, ttl)
	}
	if tagTTL < pttl {
		t.Errorf("PTTL of the tag set = %v, want at least the entry's %v", tagTTL, pttl)
	}

	mustHit(t, c, key)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := c.Get(ctx, key); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry with TTL %v still served after 5s", ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The tag set goes too, with its last entry.
	for len(redisKeys(t, client, prefix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("keys left after every entry expired: %v", redisKeys(t, client, prefix))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A TTL below a millisecond is rounded up, not turned into "forever".
	put(t, c, key, cache.Entry{Status: 200}, time.Microsecond)
	if pttl, err := client.PTTL(ctx, entryName(prefix, key)).Result(); err != nil || pttl > time.Millisecond {
		t.Errorf("PTTL after a 1µs TTL = %v, %v; want at most 1ms (or gone)", pttl, err)
	}
}

// A tag set keeps the latest expiry of its entries, and a re-Put with a
// longer TTL extends it.
func TestTagOutlivesEntries(t *testing.T) {
	c, client, prefix, _ := newCache(t)
	short := cache.Key("vault.schema.get", nil, "a")
	long := cache.Key("vault.schema.get", nil, "b")
	put(t, c, long, cache.Entry{Status: 200}, time.Hour, "vault:v1")
	put(t, c, short, cache.Entry{Status: 200}, time.Second, "vault:v1")
	tagTTL, err := client.PTTL(ctx, tagName(prefix, "vault:v1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if tagTTL < time.Hour-time.Minute {
		t.Errorf("tag set PTTL = %v after a shorter entry, want about 1h (the longest entry's)", tagTTL)
	}
}

func TestInvalidate(t *testing.T) {
	c, client, prefix, reg := newCache(t)
	a := cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, "alice")
	b := cache.Key("vault.schema.get", map[string]string{"vault_id": "v1"}, "bob")
	both := cache.Key("vault.list", nil, "alice")
	other := cache.Key("vault.schema.get", map[string]string{"vault_id": "v2"}, "alice")
	untagged := cache.Key("jwks", nil, "")
	put(t, c, a, cache.Entry{Status: 200}, time.Minute, "vault:v1")
	put(t, c, b, cache.Entry{Status: 200}, time.Minute, "vault:v1", "route:vault.schema.get")
	put(t, c, both, cache.Entry{Status: 200}, time.Minute, "vault:v1", "vault:v2")
	put(t, c, other, cache.Entry{Status: 200}, time.Minute, "vault:v2")
	put(t, c, untagged, cache.Entry{Status: 200}, time.Minute)

	if err := c.Invalidate(ctx, "vault:v1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		entryName(prefix, other),
		entryName(prefix, untagged),
		tagName(prefix, "route:vault.schema.get"), // still lists b, now gone: harmless
		tagName(prefix, "vault:v2"),
	}
	slices.Sort(want)
	if got := redisKeys(t, client, prefix); !slices.Equal(got, want) {
		t.Errorf("keys after Invalidate(vault:v1) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, k := range []string{a, b, both} {
		mustMiss(t, c, k)
	}
	mustHit(t, c, other)
	mustHit(t, c, untagged)
	if got := counter(t, reg, "skyflow_gateway_cache_invalidated_entries_total", nil); got != 3 {
		t.Errorf("invalidated_entries_total = %v, want 3", got)
	}

	// Several tags at once, unknown tags, no tags: no error.
	if err := c.Invalidate(ctx, "vault:v2", "vault:never-used", "route:vault.schema.get"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx); err != nil {
		t.Fatal(err)
	}
	want = []string{entryName(prefix, untagged)}
	if got := redisKeys(t, client, prefix); !slices.Equal(got, want) {
		t.Errorf("keys after Invalidate(vault:v2, ...) = %v, want %v", got, want)
	}
	if got := counter(t, reg, "skyflow_gateway_cache_invalidations_total", map[string]string{"result": "ok"}); got != 2 {
		t.Errorf("invalidations_total{result=ok} = %v, want 2 (a call without tags does nothing)", got)
	}

	// A tag is usable again after its invalidation.
	put(t, c, a, cache.Entry{Status: 200}, time.Minute, "vault:v1")
	mustHit(t, c, a)
	if err := c.Invalidate(ctx, "vault:v1"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, a)
}

// Members whose entries expired are pruned at the next Put under the tag,
// so a tag in constant use does not grow without bound.
func TestTagPruned(t *testing.T) {
	c, client, prefix, _ := newCache(t)
	for i := range 5 {
		put(t, c, cache.Key("vault.schema.get", nil, fmt.Sprint("user-", i)), cache.Entry{Status: 200}, 50*time.Millisecond, "vault:v1")
	}
	keep := cache.Key("vault.schema.get", nil, "user-keep")
	put(t, c, keep, cache.Entry{Status: 200}, time.Hour, "vault:v1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(60 * time.Millisecond)
		put(t, c, keep, cache.Entry{Status: 200}, time.Hour, "vault:v1")
		members, err := client.ZRange(ctx, tagName(prefix, "vault:v1"), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(members, []string{entryName(prefix, keep)}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tag set members = %v, want only %s once the others expired", members, entryName(prefix, keep))
		}
	}
}

// Puts racing Invalidates: every entry left in Redis is still recorded under
// its tag, so a final Invalidate leaves nothing behind.
func TestConcurrentPutInvalidate(t *testing.T) {
	c, client, prefix, _ := newCache(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				key := cache.Key("vault.schema.get", nil, fmt.Sprint(w, "-", i))
				if err := c.Put(ctx, key, cache.Entry{Status: 200, Body: []byte("x")}, time.Minute, "vault:v1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 50 {
				if err := c.Invalidate(ctx, "vault:v1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Invalidate(ctx, "vault:v1"); err != nil {
		t.Fatal(err)
	}
	if got := redisKeys(t, client, prefix); len(got) != 0 {
		t.Errorf("%d keys left after the final Invalidate, want none: a Put was lost from its tag", len(got))
	}
}

func TestNoRawValuesInKeyNames(t *testing.T) {
	c, client, prefix, reg := newCache(t)
	secrets := []string{"alice@example.com", "vlt-0123456789", "ssn-lookup", "needle-param-name"}
	key := cache.Key("vault.schema.get", map[string]string{"vault_id": secrets[1], "q.filter": secrets[2], secrets[3]: "1"}, secrets[0])
	put(t, c, key, cache.Entry{Status: 200, Body: []byte("{}")}, time.Minute, "vault:"+secrets[1], "principal:"+secrets[0])
	mustHit(t, c, key)
	// A string not made by Key is hashed too.
	raw := "vault.schema.get?vault_id=" + secrets[1] + "&principal=" + secrets[0]
	put(t, c, raw, cache.Entry{Status: 200}, time.Minute, secrets[2])
	mustHit(t, c, raw)

	keys := redisKeys(t, client, prefix)
	if len(keys) != 5 {
		t.Errorf("keys = %v, want 2 entries and 3 tag sets", keys)
	}
	layout := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(cache|cachetag):[0-9a-f]{64}$`)
	for _, k := range keys {
		if !layout.MatchString(k) {
			t.Errorf("Redis key %q, want <prefix>cache:<64 hex> or <prefix>cachetag:<64 hex>", k)
		}
		for _, s := range secrets {
			if strings.Contains(k, s) {
				t.Errorf("Redis key %q contains %q", k, s)
			}
		}
	}
	// Nor do metric labels: the route is all they carry, and an unknown
	// route for a key not made by Key.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, s := range secrets {
					if strings.Contains(l.GetValue(), s) {
						t.Errorf("metric %s label %s=%q contains %q", mf.GetName(), l.GetName(), l.GetValue(), s)
					}
				}
			}
		}
	}
	if got := counter(t, reg, "skyflow_gateway_cache_requests_total", map[string]string{"route": "unknown", "result": "hit"}); got != 1 {
		t.Errorf("requests_total{route=unknown,result=hit} = %v, want 1", got)
	}
}

func TestPutRejects(t *testing.T) {
	c, client, prefix, _ := newCache(t)
	key := cache.Key("jwks", nil, "")
	for _, tc := range []struct {
		name string
		e    cache.Entry
		ttl  time.Duration
	}{
		{"zero TTL", cache.Entry{Status: 200}, 0},
		{"negative TTL", cache.Entry{Status: 200}, -time.Second},
		{"no status", cache.Entry{}, time.Minute},
		{"status 1000", cache.Entry{Status: 1000}, time.Minute},
	} {
		if err := c.Put(ctx, key, tc.e, tc.ttl, "t"); err == nil {
			t.Errorf("Put(%s) = nil, want an error", tc.name)
		}
	}
	if got := redisKeys(t, client, prefix); len(got) != 0 {
		t.Errorf("keys after rejected Puts = %v, want none", got)
	}
}

// A value the cache cannot decode (another format, a stray write) is a
// miss, counted as an error.
func TestUndecodableEntry(t *testing.T) {
	c, client, prefix, reg := newCache(t)
	key := cache.Key("openapi", nil, "")
	for _, v := range []string{"", "garbage", "\x01", "\x01\xc8\x01\x00\x05ab", "\x02\xc8\x01\x00\x00\x00"} {
		if err := client.Set(ctx, entryName(prefix, key), v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		mustMiss(t, c, key)
	}
	// The wrong Redis type is an error too.
	if err := client.Del(ctx, entryName(prefix, key)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.SAdd(ctx, entryName(prefix, key), "x").Err(); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, key)
	if got := counter(t, reg, "skyflow_gateway_cache_requests_total", map[string]string{"route": "openapi", "result": "error"}); got != 6 {
		t.Errorf("requests_total{route=openapi,result=error} = %v, want 6", got)
	}
}

func TestRedisUnreachable(t *testing.T) {
	// The client's default options, retries and all, as a gateway has them.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { client.Close() })
	reg := prometheus.NewRegistry()
	c := cache.New(client, "test:unreachable:", cache.Options{Metrics: reg})
	key := cache.Key("jwks", nil, "")

	start := time.Now()
	if e, ok := c.Get(ctx, key); ok || e != nil {
		t.Errorf("Get = %v, %v, want a miss", e, ok)
	}
	if err := c.Put(ctx, key, cache.Entry{Status: 200}, time.Minute, "t"); err == nil {
		t.Error("Put = nil, want an error")
	}
	if err := c.Invalidate(ctx, "t"); err == nil {
		t.Error("Invalidate = nil, want an error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("three calls took %v; each should be bounded by the timeout", d)
	}
	for name, labels := range map[string]map[string]string{
		"skyflow_gateway_cache_requests_total":      {"route": "jwks", "result": "error"},
		"skyflow_gateway_cache_stores_total":        {"route": "jwks", "result": "error"},
		"skyflow_gateway_cache_invalidations_total": {"result": "error"},
	} {
		if got := counter(t, reg, name, labels); got != 1 {
			t.Errorf("%s%v = %v, want 1", name, labels, got)
		}
	}
}

// A slow Redis is a miss after the timeout, not a stuck request, even though
// the client does not apply context deadlines to its connections: here a
// server that accepts connections and never answers.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never read
			mu.Unlock()
		}
	}()
	client := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	t.Cleanup(func() { client.Close() })
	c := cache.New(client, "test:timeout:", cache.Options{Timeout: 50 * time.Millisecond})
	key := cache.Key("jwks", nil, "")

	start := time.Now()
	if _, ok := c.Get(ctx, key); ok {
		t.Error("Get = hit, want a miss")
	}
	if err := c.Put(ctx, key, cache.Entry{Status: 200}, time.Minute, "t"); err == nil {
		t.Error("Put = nil, want an error")
	}
	if err := c.Invalidate(ctx, "t"); err == nil {
		t.Error("Invalidate = nil, want an error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("three calls took %v with a 50ms timeout", d)
	}
}

// Caches sharing a Registerer share the counters rather than panic.
func TestSharedRegisterer(t *testing.T) {
	client, prefix := testenv.Redis(t)
	reg := prometheus.NewRegistry()
	c1 := cache.New(client, prefix+"a:", cache.Options{Metrics: reg})
	c2 := cache.New(client, prefix+"b:", cache.Options{Metrics: reg})
	key := cache.Key("jwks", nil, "")
	c1.Get(ctx, key)
	c2.Get(ctx, key)
	if got := counter(t, reg, "skyflow_gateway_cache_requests_total", map[string]string{"route": "jwks", "result": "miss"}); got != 2 {
		t.Errorf("requests_total{route=jwks,result=miss} = %v, want 2", got)
	}
}
