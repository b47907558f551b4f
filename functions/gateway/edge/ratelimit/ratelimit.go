// Package ratelimit limits the rate of the gateway's requests per subject
// (a principal, or the client address of an anonymous request) and route
// class, with the limits from configuration ([ParseLimits]).
//
// # Design
//
// Each (class, subject) has one Redis key,
//
//	<prefix>rl:<class>:<sha256 hex of the subject>
//
// holding the theoretical arrival time of GCRA (the generic cell rate
// algorithm, a token bucket kept as one timestamp), updated by the Lua
// script of github.com/go-redis/redis_rate, so every replica of the gateway
// draws from the same allowance. The script reads Redis's clock, so the
// replicas' clocks play no part, and the key expires once its bucket is
// full again. The subject is hashed so that no principal id or address sits
// in Redis in the clear (this hides it from a reader of Redis; an IPv4
// address can still be found by hashing all of them).
//
// # Redis unreachable: fall back to a limit per replica
//
// When a Redis call fails or takes longer than Options.Timeout, the request
// is decided by an in-process GCRA per (class, subject) with the same
// limits (Decision.Degraded is true), and for Options.Cooldown after that
// every request is, so that an outage does not add a timeout to each one.
// Not failing closed: the limits protect the vault's capacity and share it
// fairly, and refusing every request would turn an outage of Redis, a
// dependency the data itself does not need, into an outage of the whole
// API. Not failing open: an outage of Redis (which an attacker may wait for
// or cause) would then lift all limits, inviting a flood or bulk
// extraction. Each replica limiting by itself keeps every subject within
// the limit times the number of replicas. (Logins are different: the
// password-guessing throttle, domain/identity/throttle, fails closed.) The fallback
// remembers at most Options.LocalKeys subjects, dropping idle ones first.
//
// Nothing about the subject is logged or used as a metric label.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Options tune a [Limiter]; the zero Options are the defaults.
type Options struct {
	// Timeout bounds each Redis call (default 100ms): a request must not
	// wait long on its rate limit.
	Timeout time.Duration
	// Cooldown is how long requests are decided in process after a Redis
	// call failed before Redis is tried again (default 1s).
	Cooldown time.Duration
	// LocalKeys caps the (class, subject) pairs the in-process fallback
	// remembers (default 100000).
	LocalKeys int
	// Metrics, if set, registers the decision counters.
	Metrics prometheus.Registerer
	// Logger gets a line when Redis becomes unreachable and when it is
	// back (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of [Options].
const (
	DefaultTimeout   = 100 * time.Millisecond
	DefaultCooldown  = time.Second
	DefaultLocalKeys = 100_000
)

// Limiter decides whether a request may go ahead; it is safe for concurrent
// use.
type Limiter struct {
	redis    *redis_rate.Limiter
	prefix   string
	timeout  time.Duration
	cooldown time.Duration
	log      *slog.Logger
	local    *local
	metrics  *metrics
	// downUntil is when to try Redis again (Unix nanoseconds); down is
	// whether the last call failed, so each change is logged once.
	downUntil atomic.Int64
	down      atomic.Bool
}

// New returns a Limiter keeping its state in rdb under prefix. It panics if
// the metrics cannot be registered (a collector of the same name but other
// labels), a mistake to find at start-up.
func New(rdb redis.UniversalClient, prefix string, o Options) *Limiter {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.LocalKeys <= 0 {
		o.LocalKeys = DefaultLocalKeys
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		panic("ratelimit: " + err.Error())
	}
	return &Limiter{
		redis:    redis_rate.NewLimiter(unprefixed{rdb}),
		prefix:   prefix,
		timeout:  o.Timeout,
		cooldown: o.Cooldown,
		log:      o.Logger,
		local:    newLocal(o.LocalKeys),
		metrics:  m,
	}
}

// Decision is the outcome of [Limiter.Allow].
type Decision struct {
	Allowed bool
	// Limit is the burst, the most requests allowed at once; Remaining is
	// how many more are allowed now (0 when refused).
	Limit, Remaining int
	// RetryAfter is, when refused, how long until one request is allowed.
	// ResetAfter is how long until the full burst is allowed again.
	RetryAfter, ResetAfter time.Duration
	// Degraded is true when Redis could not be reached and this replica
	// decided alone.
	Degraded bool
}

// Allow decides one request of subject in class under lim, and records it.
// class must come from a fixed set (it is a metric label and part of a
// Redis key). An invalid lim (Rate, Burst or Period not positive, as in the
// zero Limit of a class missing from the configuration) refuses every
// request: a gap in the configuration must show, not lift the limit.
func (l *Limiter) Allow(ctx context.Context, class, subject string, lim Limit) Decision {
	if !lim.valid() {
		d := Decision{RetryAfter: time.Minute}
		l.metrics.record(class, d)
		return d
	}
	sum := sha256.Sum256([]byte(subject))
	key := l.prefix + "rl:" + class + ":" + hex.EncodeToString(sum[:])
	if time.Now().UnixNano() >= l.downUntil.Load() {
		res, err := l.allowRedis(ctx, key, lim)
		if err == nil {
			l.up()
			d := Decision{Allowed: res.Allowed > 0, Limit: lim.Burst, ResetAfter: max(res.ResetAfter, 0)}
			if d.Allowed {
				d.Remaining = remaining(lim, d.ResetAfter)
			} else {
				d.RetryAfter = res.RetryAfter
			}
			l.metrics.record(class, d)
			return d
		}
		if ctx.Err() == nil { // not the caller giving up
			l.fail(err)
		}
	}
	d := l.local.allow(key, lim, time.Now())
	d.Degraded = true
	l.metrics.record(class, d)
	return d
}

// allowRedis runs redis_rate's script, waiting at most l.timeout: go-redis
// applies a context's deadline to the connection only if the client has
// ContextTimeoutEnabled, so the wait is bounded here whatever the client's
// options. A call left behind ends at the client's own timeouts.
func (l *Limiter) allowRedis(ctx context.Context, key string, lim Limit) (*redis_rate.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	type reply struct {
		res *redis_rate.Result
		err error
	}
	c := make(chan reply, 1)
	go func() {
		// redis_rate asserts the types of the script's reply: a surprise
		// must not bring the gateway down.
		defer func() {
			if p := recover(); p != nil {
				c <- reply{err: fmt.Errorf("unexpected reply from redis: %v", p)}
			}
		}()
		res, err := l.redis.Allow(ctx, key, redis_rate.Limit{Rate: lim.Rate, Burst: lim.Burst, Period: lim.Period})
		c <- reply{res, err}
	}()
	select {
	case r := <-c:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// remaining is the events left after an allowed one, from its ResetAfter.
// redis_rate's Result.Remaining is often one short: its script truncates a
// quotient computed from two large timestamps (2.9999999 gives 2).
// ResetAfter carries the same error, which a thousandth of an event
// absorbs.
func remaining(lim Limit, resetAfter time.Duration) int {
	interval := float64(lim.Period) / float64(lim.Rate)
	r := float64(lim.Burst) - float64(resetAfter)/interval + 1e-3
	return max(0, min(lim.Burst, int(r)))
}

// fail starts a cooldown after a failed Redis call.
func (l *Limiter) fail(err error) {
	l.downUntil.Store(time.Now().Add(l.cooldown).UnixNano())
	if l.down.CompareAndSwap(false, true) {
		l.log.Warn("ratelimit: redis unreachable, limiting per replica", slog.String("error", err.Error()))
	}
}

// up notes a successful Redis call; the fallback's state is dropped, since
// Redis has the shared state again.
func (l *Limiter) up() {
	if l.down.CompareAndSwap(true, false) {
		l.local.reset()
		l.log.Info("ratelimit: redis reachable again")
	}
}

// SetHeaders writes d as RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (seconds, rounded up) and, when refused, Retry-After
// (seconds, rounded up and at least 1, so a client never retries at once).
func (d Decision) SetHeaders(h http.Header) {
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(d.ResetAfter), 10))
	if !d.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// unprefixed removes the "rate:" redis_rate puts in front of each key, so
// that the keys stay under the caller's prefix (where ACLs and clean-up
// expect them). Eval and EvalSha are the only calls with keys that
// redis_rate's Allow makes.
type unprefixed struct{ redis.UniversalClient }

func (u unprefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.Eval(ctx, script, trimRate(keys), args...)
}

func (u unprefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalSha(ctx, sha1, trimRate(keys), args...)
}

func trimRate(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, "rate:")
	}
	return out
}
