package ratelimit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/functions/gateway/edge/ratelimit"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.DiscardHandler)
)

// threePer600ms allows a burst of 3, then one every 200ms.
var threePer600ms = ratelimit.Limit{Rate: 3, Burst: 3, Period: 600 * time.Millisecond}

func newLimiter(t *testing.T, o ratelimit.Options) (*ratelimit.Limiter, *redis.Client, string) {
	t.Helper()
	client, prefix := testenv.Redis(t)
	return ratelimit.New(client, prefix, o), client, prefix
}

// unreachable is a client of a port nobody listens on.
func unreachable(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// exhaust takes the whole burst of lim and returns the refusal that follows.
func exhaust(t *testing.T, l *ratelimit.Limiter, class, subject string, lim ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	for i := range lim.Burst {
		d := l.Allow(ctx, class, subject, lim)
		if !d.Allowed {
			t.Fatalf("request %d of a burst of %d refused: %+v", i+1, lim.Burst, d)
		}
	}
	d := l.Allow(ctx, class, subject, lim)
	if d.Allowed {
		t.Fatalf("request %d of a burst of %d allowed: %+v", lim.Burst+1, lim.Burst, d)
	}
	return d
}

// waitAllowed polls until subject is allowed again and returns how long that
// took.
func waitAllowed(t *testing.T, l *ratelimit.Limiter, class, subject string, lim ratelimit.Limit, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if d := l.Allow(ctx, class, subject, lim); d.Allowed {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("still refused after %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBurstRefusedThenAllowedAgain(t *testing.T) {
	l, _, _ := newLimiter(t, ratelimit.Options{})
	for i, want := range []int{2, 1, 0} {
		d := l.Allow(ctx, "data", "alice", threePer600ms)
		if !d.Allowed || d.Degraded || d.Limit != 3 || d.Remaining != want || d.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, d, want)
		}
		if d.ResetAfter <= 0 || d.ResetAfter > 600*time.Millisecond {
			t.Errorf("request %d: ResetAfter %v, want in (0, 600ms]", i+1, d.ResetAfter)
		}
	}
	d := l.Allow(ctx, "data", "alice", threePer600ms)
	if d.Allowed || d.Degraded || d.Limit != 3 || d.Remaining != 0 {
		t.Fatalf("request 4: %+v, want refused", d)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 200*time.Millisecond {
		t.Errorf("RetryAfter %v, want in (0, 200ms]", d.RetryAfter)
	}
	if d.ResetAfter < 400*time.Millisecond || d.ResetAfter > 600*time.Millisecond {
		t.Errorf("ResetAfter %v, want in [400ms, 600ms]", d.ResetAfter)
	}

	h := http.Header{}
	d.SetHeaders(h)
	want := http.Header{
		"Ratelimit-Limit":     {"3"},
		"Ratelimit-Remaining": {"0"},
		"Ratelimit-Reset":     {"1"},
		"Retry-After":         {"1"},
	}
	if !equalHeaders(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}

	// One more request is allowed after about RetryAfter, not before.
	retry := d.RetryAfter
	if waited := waitAllowed(t, l, "data", "alice", threePer600ms, 2*time.Second); waited < retry-20*time.Millisecond {
		t.Errorf("allowed again after %v, before RetryAfter %v", waited, retry)
	}
	// The whole burst is back once the bucket has refilled.
	time.Sleep(threePer600ms.Period + 50*time.Millisecond)
	if d := l.Allow(ctx, "data", "alice", threePer600ms); !d.Allowed || d.Remaining != 2 {
		t.Errorf("after a full period: %+v, want allowed with 2 remaining", d)
	}
}

func TestSetHeadersAllowed(t *testing.T) {
	h := http.Header{"Retry-After": {"9"}}
	ratelimit.Decision{Allowed: true, Limit: 400, Remaining: 399, ResetAfter: 2500 * time.Millisecond}.SetHeaders(h)
	want := http.Header{
		"Ratelimit-Limit":     {"400"},
		"Ratelimit-Remaining": {"399"},
		"Ratelimit-Reset":     {"3"},
		"Retry-After":         {"9"}, // not the limiter's to touch when allowed
	}
	if !equalHeaders(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	h = http.Header{}
	ratelimit.Decision{RetryAfter: time.Millisecond, ResetAfter: 0}.SetHeaders(h)
	if h.Get("Retry-After") != "1" || h.Get("RateLimit-Reset") != "0" {
		t.Errorf("refused with 1ms to wait: headers %v, want Retry-After 1", h)
	}
	h = http.Header{}
	ratelimit.Decision{RetryAfter: 61 * time.Second}.SetHeaders(h)
	if h.Get("Retry-After") != "61" {
		t.Errorf("Retry-After %q, want 61", h.Get("Retry-After"))
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestSubjectsAndClassesHaveTheirOwnBuckets(t *testing.T) {
	l, _, _ := newLimiter(t, ratelimit.Options{})
	one := ratelimit.Limit{Rate: 1, Burst: 1, Period: time.Hour}
	exhaust(t, l, "data", "alice", one)
	if d := l.Allow(ctx, "data", "bob", one); !d.Allowed {
		t.Errorf("bob refused after alice used her allowance: %+v", d)
	}
	if d := l.Allow(ctx, "management", "alice", one); !d.Allowed {
		t.Errorf("alice refused in another class: %+v", d)
	}
	if d := l.Allow(ctx, "data", "alice", one); d.Allowed {
		t.Errorf("alice allowed again in data: %+v", d)
	}
}

func TestKeysAreUnderThePrefixAndHashed(t *testing.T) {
	l, client, prefix := newLimiter(t, ratelimit.Options{})
	subject := "user:alice@example.com"
	l.Allow(ctx, "data", subject, threePer600ms)
	l.Allow(ctx, "auth", subject, threePer600ms)

	var keys []string
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	sum := sha256.Sum256([]byte(subject))
	h := hex.EncodeToString(sum[:])
	want := []string{prefix + "rl:auth:" + h, prefix + "rl:data:" + h}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	for _, k := range keys {
		if strings.Contains(k, "alice") {
			t.Errorf("key %q holds the subject", k)
		}
	}
	// redis_rate's own "rate:" prefix is not used.
	if n, err := client.Exists(ctx, "rate:"+want[0]).Result(); err != nil || n != 0 {
		t.Errorf("rate:-prefixed key: exists %d, %v", n, err)
	}
	// The key lasts no longer than its bucket takes to refill.
	if ttl := client.TTL(ctx, want[0]).Val(); ttl <= 0 || ttl > time.Second {
		t.Errorf("TTL %v, want in (0, 1s]", ttl)
	}
}

func TestConcurrentRequestsShareOneBudget(t *testing.T) {
	client, prefix := testenv.Redis(t)
	// Two limiters stand for two replicas of the gateway.
	replicas := []*ratelimit.Limiter{
		ratelimit.New(client, prefix, ratelimit.Options{Timeout: 5 * time.Second}),
		ratelimit.New(client, prefix, ratelimit.Options{Timeout: 5 * time.Second}),
	}
	lim := ratelimit.Limit{Rate: 1, Burst: 20, Period: time.Hour}
	var (
		mu      sync.Mutex
		allowed int
		wg      sync.WaitGroup
	)
	for i := range 100 {
		wg.Go(func() {
			d := replicas[i%2].Allow(ctx, "data", "alice", lim)
			if d.Degraded {
				t.Errorf("degraded: %+v", d)
			}
			if d.Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 20 {
		t.Errorf("%d of 100 concurrent requests allowed, want the burst of 20", allowed)
	}
}

func TestRedisUnreachableLimitsInProcess(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	l := ratelimit.New(unreachable(t), "test:", ratelimit.Options{Metrics: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i, want := range []int{2, 1, 0} {
		d := l.Allow(ctx, "data", "alice", threePer600ms)
		if !d.Allowed || !d.Degraded || d.Limit != 3 || d.Remaining != want {
			t.Fatalf("request %d: %+v, want allowed, degraded, %d remaining", i+1, d, want)
		}
	}
	d := l.Allow(ctx, "data", "alice", threePer600ms)
	if d.Allowed || !d.Degraded || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > 200*time.Millisecond {
		t.Fatalf("request 4: %+v, want refused, degraded, retry within 200ms", d)
	}
	h := http.Header{}
	d.SetHeaders(h)
	if h.Get("Retry-After") != "1" || h.Get("RateLimit-Remaining") != "0" {
		t.Errorf("headers %v", h)
	}
	// Other subjects and classes still have their own buckets.
	if d := l.Allow(ctx, "data", "bob", threePer600ms); !d.Allowed || !d.Degraded {
		t.Errorf("bob: %+v", d)
	}
	if d := l.Allow(ctx, "auth", "alice", threePer600ms); !d.Allowed || !d.Degraded {
		t.Errorf("alice in auth: %+v", d)
	}
	waitAllowed(t, l, "data", "alice", threePer600ms, 2*time.Second)

	var all float64
	for _, class := range []string{"data", "auth"} {
		for _, result := range []string{"allowed", "limited"} {
			all += value(t, reg, "skyflow_gateway_ratelimit_decisions_total", "class", class, "result", result)
		}
	}
	if got := value(t, reg, "skyflow_gateway_ratelimit_decisions_total", "class", "data", "result", "limited"); got < 1 {
		t.Errorf("limited decisions for data: %v, want at least 1", got)
	}
	if got := value(t, reg, "skyflow_gateway_ratelimit_decisions_total", "class", "data", "result", "allowed"); got != 5 {
		t.Errorf("allowed decisions for data: %v, want 5", got)
	}
	if got := value(t, reg, "skyflow_gateway_ratelimit_degraded_total"); got != all {
		t.Errorf("degraded decisions: %v, want all %v", got, all)
	}
	if n := strings.Count(logs.String(), "redis unreachable"); n != 1 {
		t.Errorf("logged the outage %d times, want once: %s", n, logs.String())
	}
	if strings.Contains(logs.String(), "alice") {
		t.Errorf("the log names the subject: %s", logs.String())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() != "class" && lp.GetName() != "result" {
					t.Errorf("metric %s has label %s", f.GetName(), lp.GetName())
				}
			}
		}
	}
}

// value is the counter name{labels...} in reg, or 0.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
					return lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}) {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestRedisNotAnsweringTimesOut(t *testing.T) {
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	client := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	l := ratelimit.New(client, "test:", ratelimit.Options{Timeout: 200 * time.Millisecond, Cooldown: time.Hour, Logger: quiet})

	start := time.Now()
	d := l.Allow(ctx, "data", "alice", threePer600ms)
	if took := time.Since(start); took > time.Second {
		t.Errorf("first request took %v with a 200ms timeout", took)
	}
	if !d.Allowed || !d.Degraded {
		t.Errorf("first request: %+v, want allowed and degraded", d)
	}
	// During the cooldown Redis is not waited for.
	start = time.Now()
	d = l.Allow(ctx, "data", "alice", threePer600ms)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("request in the cooldown took %v", took)
	}
	if !d.Allowed || !d.Degraded || d.Remaining != 1 {
		t.Errorf("second request: %+v, want allowed, degraded, 1 remaining", d)
	}
}

func TestInvalidLimitRefuses(t *testing.T) {
	l, _, _ := newLimiter(t, ratelimit.Options{})
	for _, lim := range []ratelimit.Limit{{}, {Rate: 1, Burst: 0, Period: time.Second}, {Rate: 1, Burst: 1}} {
		if d := l.Allow(ctx, "data", "alice", lim); d.Allowed || d.RetryAfter <= 0 {
			t.Errorf("Allow under %+v: %+v, want refused", lim, d)
		}
	}
}
