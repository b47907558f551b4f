// Package cache is the gateway's HTTP response cache, kept in Redis so
// that every gateway replica serves and invalidates the same entries. It is
// meant for the few routes whose responses are read far more often than they
// change: the JWKS, the OpenAPI document, vault schema reads.
//
// # Keys
//
// [Key] names an entry by the route's name, every request value the response
// depends on (path parameters, the query parameters the handler reads, an
// Accept header if it selects the format) and the principal. The name is a
// SHA-256 over an unambiguous encoding of all three, so no principal, vault
// ID or query value reaches Redis, whose key names show up in MONITOR, SCAN,
// slow logs and memory reports. A response that depends on who asks must be
// cached under its principal: caching it under "" (anonymous) would serve one
// caller's view to another.
//
// # Redis layout
//
//	<prefix>cache:<sha256 hex>     the entry: one string (status, content
//	                               type, ETag, stored time, body), PX = TTL
//	<prefix>cachetag:<sha256 hex>  a tag: sorted set of the entry key names
//	                               put under it, scored by when each expires
//
// The tag set's own expiry is that of its latest-expiring member, so it
// outlives every entry it can find; members whose entries have expired are
// pruned at each Put, so a tag that keeps being used (a busy vault's schema,
// cached per principal) does not grow without bound.
//
// Put and Invalidate are each one Lua script, so an entry is never stored
// without its tags, and an Invalidate never drops a tag set while missing an
// entry added to it meanwhile. On Redis Cluster every key of a Cache must be
// in one slot: give the prefix a hash tag, such as "{gateway}:".
//
// # The race we accept
//
// A response computed from data read before a change, and Put after the
// Invalidate for that change ran, stays cached until its TTL: the cache
// cannot tell a stale response from a fresh one. The events that trigger
// Invalidate arrive after the change anyway (through the outbox and the
// broker), so the TTL is the bound on staleness either way; choose it with
// that in mind.
//
// # Redis unavailable: fail open
//
// The cache is an optimisation: when Redis cannot be reached or is slow
// (each call is bounded by Options.Timeout), Get reports a miss and the
// gateway computes the response itself. Put and Invalidate return the error
// for the caller to log.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each Redis call when Options.Timeout is zero: a cache
// lookup slower than this is likely slower than computing the response.
const DefaultTimeout = 100 * time.Millisecond

// Options configure a Cache; the zero Options are usable.
type Options struct {
	// Timeout bounds each Redis call, whatever the client's own timeouts;
	// zero means DefaultTimeout.
	Timeout time.Duration
	// Metrics, when not nil, receives the cache's counters. Caches sharing
	// a Registerer share the counters.
	Metrics prometheus.Registerer
}

// Cache is a response cache in Redis; it is safe for concurrent use.
type Cache struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	m       *metrics
}

// New returns a Cache keeping its keys under prefix in rdb. It panics if the
// metrics cannot be registered (a name taken by a different collector), as
// prometheus.MustRegister does: that is a programming error.
func New(rdb redis.UniversalClient, prefix string, o Options) *Cache {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		panic("cache: " + err.Error())
	}
	return &Cache{rdb: rdb, prefix: prefix, timeout: o.Timeout, m: m}
}

// Entry is a cached response.
type Entry struct {
	Status      int
	ContentType string
	Body        []byte
	// ETag is the entity tag sent with the response, quoted as in the
	// header. Put fills it with [ETag] of the body when empty.
	ETag string
	// Stored is when the response was stored; Put fills it with the current
	// time when zero. It must lie between the years 1678 and 2262.
	Stored time.Time
}

// hashLen is the length of a key's hash part: SHA-256 in hex.
const hashLen = 2 * sha256.Size

// Key returns the cache key of a response to route (the route's name in the
// gateway's route table, such as "vault.schema.get": never a request path,
// as it appears in metric labels) given params and principal ("" for an
// anonymous response, shared by every caller).
//
// params are every request value the response depends on other than the
// principal: path parameters and the query parameters the handler reads,
// after normalisation (repeated values joined in their meaningful order,
// names distinct from the path parameters', e.g. "q.limit"). Their order does
// not matter. Params that do not affect the response should be left out, or
// every variation of them is a separate entry.
//
// The key is the route, ":", and the hex SHA-256 of an unambiguous encoding
// of route, params and principal; only the hash reaches Redis.
func Key(route string, params map[string]string, principal string) string {
	h := sha256.New()
	var buf []byte
	field := func(s string) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(s)))
		h.Write(buf)
		h.Write([]byte(s))
	}
	field("skyflow.respcache.v1") // the package's old name: renaming it would orphan every stored entry
	field(route)
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	buf = binary.AppendUvarint(buf[:0], uint64(len(names)))
	h.Write(buf)
	for _, k := range names {
		field(k)
		field(params[k])
	}
	field(principal)
	return route + ":" + hex.EncodeToString(h.Sum(nil))
}

// split returns the route and hash of a key made by Key. Any other string is
// hashed, so even a misused key never puts raw values in a Redis key name,
// and its route is unknown.
func split(key string) (route, hash string) {
	if i := len(key) - hashLen - 1; i >= 0 && key[i] == ':' && isLowerHex(key[i+1:]) {
		return key[:i], key[i+1:]
	}
	sum := sha256.Sum256([]byte(key))
	return "", hex.EncodeToString(sum[:])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (c *Cache) entryName(hash string) string { return c.prefix + "cache:" + hash }

func (c *Cache) tagName(tag string) string {
	sum := sha256.Sum256([]byte(tag))
	return c.prefix + "cachetag:" + hex.EncodeToString(sum[:])
}

// Get returns the entry stored under key. Any failure (Redis unreachable,
// slow or erring, an entry it cannot decode) is a miss, counted as an error,
// since the caller can always compute the response itself.
func (c *Cache) Get(ctx context.Context, key string) (*Entry, bool) {
	route, hash := split(key)
	raw, err := bounded(ctx, c.timeout, func(ctx context.Context) ([]byte, error) {
		return c.rdb.Get(ctx, c.entryName(hash)).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		c.m.request(route, "miss")
		return nil, false
	}
	if err != nil {
		c.m.request(route, "error")
		return nil, false
	}
	e, err := decode(raw)
	if err != nil {
		c.m.request(route, "error")
		return nil, false
	}
	c.m.request(route, "hit")
	return e, true
}

// putScript stores an entry and records it under its tags, atomically.
//
//	KEYS[1]     the entry
//	KEYS[2..n]  the tag sets
//	ARGV[1]     the encoded entry
//	ARGV[2]     the TTL in milliseconds
//
// A member's score is when its entry expires, by the Redis clock (not the
// gateways', which may disagree), plus 1ms so that it is never pruned while
// the entry may still be alive. The tag set expires with its latest member.
var putScript = redis.NewScript(`
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
if #KEYS < 2 then return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = string.format('%.0f', now + ttl + 1)
for i = 2, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. string.format('%.0f', now))
  redis.call('ZADD', KEYS[i], exp, KEYS[1])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', tonumber(last[2])))
end
return 1
`)

// Put stores e under key for ttl (rounded up to whole milliseconds) and
// records it under each tag, for [Cache.Invalidate] to find. Tags name what
// the response was computed from ("vault:<id>"); add one naming the route
// ("route:<name>") to be able to drop a whole route.
func (c *Cache) Put(ctx context.Context, key string, e Entry, ttl time.Duration, tags ...string) error {
	if ttl <= 0 {
		return fmt.Errorf("cache: TTL %v is not positive", ttl)
	}
	if e.Status < 100 || e.Status > 999 {
		return fmt.Errorf("cache: status %d is not an HTTP status code", e.Status)
	}
	if e.ETag == "" {
		e.ETag = ETag(e.Body)
	}
	if e.Stored.IsZero() {
		e.Stored = time.Now()
	}
	ms := (ttl + time.Millisecond - 1) / time.Millisecond
	route, hash := split(key)
	keys := make([]string, 1, 1+len(tags))
	keys[0] = c.entryName(hash)
	for _, tag := range tags {
		keys = append(keys, c.tagName(tag))
	}
	v := encode(&e)
	_, err := bounded(ctx, c.timeout, func(ctx context.Context) (any, error) {
		return nil, putScript.Run(ctx, c.rdb, keys, v, int64(ms)).Err()
	})
	c.m.store(route, err)
	if err != nil {
		return fmt.Errorf("cache: put: %w", err)
	}
	return nil
}

// invalidateScript deletes every entry recorded in the tag sets, then the
// sets, in one step: a Put running at the same time lands wholly before (and
// is deleted) or wholly after (and is recorded in a new set). It returns how
// many entries it deleted. UNLINK frees the bodies off the main thread.
var invalidateScript = redis.NewScript(`
local n = 0
for i = 1, #KEYS do
  local members = redis.call('ZRANGE', KEYS[i], 0, -1)
  for j = 1, #members, 500 do
    n = n + redis.call('UNLINK', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('UNLINK', KEYS[i])
end
return n
`)

// Invalidate deletes every entry put under any of tags. Call it when the
// thing a tag names changes, e.g. with "vault:<id>" on a
// com.skyflow.vault.schema.updated event. An error means the entries may
// still be served until their TTL; the caller should retry.
func (c *Cache) Invalidate(ctx context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, len(tags))
	for i, tag := range tags {
		keys[i] = c.tagName(tag)
	}
	n, err := bounded(ctx, c.timeout, func(ctx context.Context) (int64, error) {
		return invalidateScript.Run(ctx, c.rdb, keys).Int64()
	})
	c.m.invalidated(n, err)
	if err != nil {
		return fmt.Errorf("cache: invalidate: %w", err)
	}
	return nil
}

// bounded runs f and returns its result, or an error once timeout has
// passed, whichever is first. go-redis applies a context's deadline to the
// connection only if the client has ContextTimeoutEnabled, so the bound is
// kept here whatever the client's options; a call left behind ends at the
// client's own read and write timeouts.
func bounded[T any](ctx context.Context, timeout time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: a call left behind must not block
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // finished just in time: keep its result
			return r.v, r.err
		default:
			var zero T
			return zero, ctx.Err()
		}
	}
}

// Entry encoding, version 1: the version byte, then uvarint status, varint
// stored time (Unix nanoseconds), uvarint-length-prefixed content type and
// ETag, and the body as the rest. The version byte lets a later format be
// read as a miss rather than misread.
const version1 = 1

func encode(e *Entry) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(e.ContentType)+len(e.ETag)+len(e.Body))
	b = append(b, version1)
	b = binary.AppendUvarint(b, uint64(e.Status)) //nolint:gosec // G115: Put has checked that it is 100 to 999
	b = binary.AppendVarint(b, e.Stored.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(e.ContentType)))
	b = append(b, e.ContentType...)
	b = binary.AppendUvarint(b, uint64(len(e.ETag)))
	b = append(b, e.ETag...)
	return append(b, e.Body...)
}

var errCorrupt = errors.New("cache: undecodable entry")

func decode(b []byte) (*Entry, error) {
	if len(b) == 0 || b[0] != version1 {
		return nil, errCorrupt
	}
	b = b[1:]
	status, n := binary.Uvarint(b)
	if n <= 0 || status < 100 || status > 999 {
		return nil, errCorrupt
	}
	b = b[n:]
	stored, n := binary.Varint(b)
	if n <= 0 {
		return nil, errCorrupt
	}
	b = b[n:]
	str := func() (string, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 {
			return "", false
		}
		rest := b[n:]
		if l > uint64(len(rest)) {
			return "", false
		}
		s := string(rest[:l])
		b = rest[l:]
		return s, true
	}
	ct, ok := str()
	if !ok {
		return nil, errCorrupt
	}
	etag, ok := str()
	if !ok {
		return nil, errCorrupt
	}
	return &Entry{
		Status:      int(status),
		ContentType: ct,
		Body:        b,
		ETag:        etag,
		Stored:      time.Unix(0, stored),
	}, nil
}
