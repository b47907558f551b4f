package throttle_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/domain/identity/throttle"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

var ctx = context.Background()

// slowOnly slows down from the first failure, 1ms doubling, and never locks:
// its wait tells the exact failure count (2^(n-1) ms).
var slowOnly = throttle.Policy{Delay: time.Millisecond, MaxDelay: time.Hour, Window: time.Hour}

func newLimiter(t *testing.T, account, address throttle.Policy) (*throttle.Limiter, *redis.Client, string) {
	t.Helper()
	client, prefix := testenv.Redis(t)
	return throttle.New(client, prefix, account, address), client, prefix
}

func before(t *testing.T, l *throttle.Limiter, account, address string) time.Duration {
	t.Helper()
	wait, err := l.Before(ctx, account, address)
	if err != nil {
		t.Fatalf("Before(%s, %s): %v", account, address, err)
	}
	return wait
}

func fail(t *testing.T, l *throttle.Limiter, account, address string) (bool, bool) {
	t.Helper()
	a, b, err := l.Failed(ctx, account, address)
	if err != nil {
		t.Fatalf("Failed(%s, %s): %v", account, address, err)
	}
	return a, b
}

func locked(t *testing.T, l *throttle.Limiter, account, address string) *throttle.Locked {
	t.Helper()
	_, err := l.Before(ctx, account, address)
	var lk *throttle.Locked
	if !errors.As(err, &lk) {
		t.Fatalf("Before(%s, %s) error = %v, want *Locked", account, address, err)
	}
	return lk
}

// eventually polls cond until it holds or a generous deadline passes: lock
// and window expiry is by Redis TTL, not by a tight sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSlowDownGrowsThenCaps(t *testing.T) {
	p := throttle.Policy{FreeFailures: 3, Delay: 250 * time.Millisecond, MaxDelay: 4 * time.Second, Window: time.Hour}
	l, _, _ := newLimiter(t, p, throttle.Policy{})
	want := []time.Duration{0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 4000, 4000, 4000}
	for n, w := range want {
		if got := before(t, l, "alice@example.com", "203.0.113.7"); got != w*time.Millisecond {
			t.Errorf("after %d failures: wait %v, want %v", n, got, w*time.Millisecond)
		}
		fail(t, l, "alice@example.com", "203.0.113.7")
	}
}

func TestDelayNotAPowerOfTwoOfMax(t *testing.T) {
	p := throttle.Policy{Delay: 300 * time.Millisecond, MaxDelay: time.Second, Window: time.Hour}
	l, _, _ := newLimiter(t, p, throttle.Policy{})
	for n, w := range []time.Duration{0, 300, 600, 1000, 1000} {
		if got := before(t, l, "a", "198.51.100.1"); got != w*time.Millisecond {
			t.Errorf("after %d failures: wait %v, want %v", n, got, w*time.Millisecond)
		}
		fail(t, l, "a", "198.51.100.1")
	}
}

func TestLockAfterN(t *testing.T) {
	p := throttle.Policy{FreeFailures: 1, Delay: time.Millisecond, MaxDelay: 10 * time.Millisecond, LockAfter: 5, LockFor: time.Minute, Window: time.Hour}
	l, _, _ := newLimiter(t, p, throttle.Policy{})
	for i := 1; i < 5; i++ {
		if a, _ := fail(t, l, "alice@example.com", "203.0.113.7"); a {
			t.Fatalf("failure %d locked, want the 5th", i)
		}
		before(t, l, "alice@example.com", "203.0.113.7")
	}
	start := time.Now()
	if a, b := fail(t, l, "alice@example.com", "203.0.113.7"); !a || b {
		t.Fatalf("5th failure: locked = %v, %v; want true, false", a, b)
	}
	lk := locked(t, l, "alice@example.com", "203.0.113.7")
	if lk.Scope != throttle.ScopeAccount {
		t.Errorf("Scope = %q, want account", lk.Scope)
	}
	if lk.Until.Before(start.Add(time.Minute-5*time.Second)) || lk.Until.After(time.Now().Add(time.Minute)) {
		t.Errorf("Until = %v, want about a minute from %v", lk.Until, start)
	}
	// Already locked: later failures do not report a new lock, nor extend it.
	for range 3 {
		if a, _ := fail(t, l, "alice@example.com", "203.0.113.7"); a {
			t.Error("a failure while locked reported a new lock")
		}
	}
	if again := locked(t, l, "alice@example.com", "203.0.113.7"); again.Until.After(lk.Until.Add(time.Second)) {
		t.Errorf("the lock was extended from %v to %v", lk.Until, again.Until)
	}
	// The client is told 429 with the time, through apierr.From too.
	_, err := l.Before(ctx, "alice@example.com", "203.0.113.7")
	ae := apierr.From(err)
	if ae.HTTPCode != http.StatusTooManyRequests || !strings.HasPrefix(ae.Message, "too many failed logins; try again after ") {
		t.Errorf("apierr.From(locked) = %v, want 429 too many failed logins", ae)
	}
	if strings.Contains(ae.Message, "alice") || strings.Contains(ae.Message, "account") {
		t.Errorf("the message %q names the account", ae.Message)
	}
}

func TestLockReportedOnceUnderConcurrency(t *testing.T) {
	acct := throttle.Policy{LockAfter: 10, LockFor: time.Hour, Window: time.Hour}
	l, _, _ := newLimiter(t, acct, slowOnly)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		newly  int
		errs   []error
		failed = make(chan struct{})
	)
	for range 20 {
		wg.Go(func() {
			<-failed
			a, _, err := l.Failed(ctx, "alice@example.com", "203.0.113.7")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if a {
				newly++
			}
		})
	}
	close(failed)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Failed: %v", errs)
	}
	if newly != 1 {
		t.Errorf("%d failures reported the account lock, want exactly 1", newly)
	}
	locked(t, l, "alice@example.com", "203.0.113.7")
	// The address counted all 20, exactly: its wait is 2^19 ms.
	if got := before(t, l, "bob@example.com", "203.0.113.7"); got != (1<<19)*time.Millisecond {
		t.Errorf("address wait after 20 concurrent failures = %v, want %v", got, (1<<19)*time.Millisecond)
	}
}

func TestAddressLockReportedOnceUnderConcurrency(t *testing.T) {
	addr := throttle.Policy{LockAfter: 15, LockFor: time.Hour, Window: time.Hour}
	l, _, _ := newLimiter(t, slowOnly, addr)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		newly int
	)
	start := make(chan struct{})
	for i := range 20 {
		wg.Go(func() {
			<-start
			// Twenty different accounts from one address, as a spray.
			a, b, err := l.Failed(ctx, fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("2001:db8:1:2::%x", i+1))
			if err != nil || a {
				t.Errorf("Failed: account locked %v, err %v", a, err)
			}
			if b {
				mu.Lock()
				newly++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if newly != 1 {
		t.Errorf("%d failures reported the address lock, want exactly 1", newly)
	}
	// Locked for the whole /64, whatever account; another address is free.
	if lk := locked(t, l, "someone@example.com", "[2001:db8:1:2::ffff]:443"); lk.Scope != throttle.ScopeAddress {
		t.Errorf("Scope = %q, want address", lk.Scope)
	}
	if w := before(t, l, "user0@example.com", "2001:db8:1:3::1"); w != time.Millisecond {
		t.Errorf("user0 from another address: wait %v, want 1ms (its one failure)", w)
	}
}

func TestLockExpires(t *testing.T) {
	p := throttle.Policy{Delay: time.Millisecond, MaxDelay: time.Hour, LockAfter: 3, LockFor: 200 * time.Millisecond, Window: time.Hour}
	l, _, _ := newLimiter(t, p, throttle.Policy{})
	fail(t, l, "a", "192.0.2.1")
	fail(t, l, "a", "192.0.2.1")
	if a, _ := fail(t, l, "a", "192.0.2.1"); !a {
		t.Fatal("the 3rd failure did not lock")
	}
	locked(t, l, "a", "192.0.2.1")
	eventually(t, "lock expired", func() bool {
		_, err := l.Before(ctx, "a", "192.0.2.1")
		var lk *throttle.Locked
		if err != nil && !errors.As(err, &lk) {
			t.Fatal(err)
		}
		return err == nil
	})
	// The count starts afresh: no wait, and two failures do not lock.
	if w := before(t, l, "a", "192.0.2.1"); w != 0 {
		t.Errorf("wait after the lock = %v, want 0", w)
	}
	if a, _ := fail(t, l, "a", "192.0.2.1"); a {
		t.Error("the first failure after the lock locked again")
	}
	if a, _ := fail(t, l, "a", "192.0.2.1"); a {
		t.Error("the second failure after the lock locked again")
	}
	if a, _ := fail(t, l, "a", "192.0.2.1"); !a {
		t.Error("the third failure after the lock did not lock again")
	}
}

func TestWindowExpires(t *testing.T) {
	p := throttle.Policy{Delay: time.Millisecond, MaxDelay: time.Hour, LockAfter: 3, LockFor: time.Hour, Window: 200 * time.Millisecond}
	l, _, _ := newLimiter(t, p, throttle.Policy{})
	fail(t, l, "a", "192.0.2.1")
	fail(t, l, "a", "192.0.2.1")
	eventually(t, "window ended", func() bool { return before(t, l, "a", "192.0.2.1") == 0 })
	// Two failures were forgotten: two more do not make three.
	fail(t, l, "a", "192.0.2.1")
	if a, _ := fail(t, l, "a", "192.0.2.1"); a {
		t.Error("failures from an ended window counted toward the lock")
	}
}

func TestSucceededResetsAccountOnly(t *testing.T) {
	l, _, _ := newLimiter(t, slowOnly, slowOnly)
	for range 4 {
		fail(t, l, "alice@example.com", "203.0.113.7")
	}
	if w := before(t, l, "alice@example.com", "198.51.100.1"); w != 8*time.Millisecond {
		t.Fatalf("account wait = %v, want 8ms", w)
	}
	if err := l.Succeeded(ctx, "Alice@Example.com"); err != nil {
		t.Fatal(err)
	}
	if w := before(t, l, "alice@example.com", "198.51.100.1"); w != 0 {
		t.Errorf("account wait after success = %v, want 0", w)
	}
	// The address keeps its four failures.
	if w := before(t, l, "carol@example.com", "203.0.113.7"); w != 8*time.Millisecond {
		t.Errorf("address wait after the account's success = %v, want 8ms", w)
	}
}

func TestSucceededKeepsLock(t *testing.T) {
	p := throttle.Policy{LockAfter: 2, LockFor: time.Hour, Window: time.Hour}
	l, _, _ := newLimiter(t, p, p)
	fail(t, l, "a", "192.0.2.1")
	fail(t, l, "a", "192.0.2.2")
	if err := l.Succeeded(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if lk := locked(t, l, "a", "192.0.2.3"); lk.Scope != throttle.ScopeAccount {
		t.Errorf("Scope = %q, want account", lk.Scope)
	}
}

func TestAccountsIndependent(t *testing.T) {
	p := throttle.Policy{Delay: time.Millisecond, MaxDelay: time.Hour, LockAfter: 3, LockFor: time.Hour, Window: time.Hour}
	l, _, _ := newLimiter(t, p, throttle.Policy{})
	fail(t, l, "alice@example.com", "192.0.2.1")
	fail(t, l, " ALICE@example.COM ", "192.0.2.1") // the same account, normalised
	if a, _ := fail(t, l, "alice@example.com", "192.0.2.1"); !a {
		t.Fatal("3 failures did not lock alice")
	}
	if w := before(t, l, "bob@example.com", "192.0.2.1"); w != 0 {
		t.Errorf("bob's wait = %v, want 0", w)
	}
	fail(t, l, "bob@example.com", "192.0.2.1")
	if w := before(t, l, "bob@example.com", "192.0.2.1"); w != time.Millisecond {
		t.Errorf("bob's wait after 1 failure = %v, want 1ms", w)
	}
	locked(t, l, "Alice@Example.com", "192.0.2.9")
}

func TestAddressLockIndependent(t *testing.T) {
	acct := throttle.Policy{LockAfter: 10, LockFor: time.Hour, Window: time.Hour}
	addr := throttle.Policy{LockAfter: 3, LockFor: time.Hour, Window: time.Hour}
	l, _, _ := newLimiter(t, acct, addr)
	var newly []bool
	for _, who := range []string{"a", "b", "c"} {
		a, b := fail(t, l, who, "192.0.2.1")
		if a {
			t.Errorf("one failure locked account %s", who)
		}
		newly = append(newly, b)
	}
	if !slices.Equal(newly, []bool{false, false, true}) {
		t.Errorf("address lock reports = %v, want only the 3rd", newly)
	}
	lk := locked(t, l, "d", "192.0.2.1")
	if lk.Scope != throttle.ScopeAddress {
		t.Errorf("Scope = %q, want address", lk.Scope)
	}
	// The accounts are not locked elsewhere, and a success does not lift
	// the address's lock.
	before(t, l, "a", "192.0.2.2")
	if err := l.Succeeded(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	locked(t, l, "a", "192.0.2.1")
	// An IPv4-mapped IPv6 address is the same address.
	locked(t, l, "e", "::ffff:192.0.2.1")
}

func TestBothLockedReportsLaterUntil(t *testing.T) {
	acct := throttle.Policy{LockAfter: 1, LockFor: time.Minute, Window: time.Hour}
	addr := throttle.Policy{LockAfter: 1, LockFor: time.Hour, Window: time.Hour}
	l, _, _ := newLimiter(t, acct, addr)
	if a, b := fail(t, l, "a", "192.0.2.1"); !a || !b {
		t.Fatalf("locked = %v, %v; want both", a, b)
	}
	if lk := locked(t, l, "a", "192.0.2.1"); lk.Scope != throttle.ScopeAddress || time.Until(lk.Until) < 50*time.Minute {
		t.Errorf("Locked = %+v, want the address's hour", lk)
	}
}

func TestKeys(t *testing.T) {
	l, client, prefix := newLimiter(t, throttle.DefaultAccount, throttle.DefaultAddress)
	fail(t, l, "Alice@Example.com", "203.0.113.7:51234")
	fail(t, l, "bob@example.com", "2001:db8:1:2:3:4:5:6")
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	want := []string{
		prefix + "login:acct:" + hash("alice@example.com"),
		prefix + "login:acct:" + hash("bob@example.com"),
		prefix + "login:addr:2001:db8:1:2::/64",
		prefix + "login:addr:203.0.113.7",
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	for _, k := range keys {
		if strings.Contains(strings.ToLower(k), "alice") || strings.Contains(k, "bob") {
			t.Errorf("key %q has an email in the clear", k)
		}
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 15*time.Minute {
			t.Errorf("key %q TTL = %v, want within the 15m window", k, ttl)
		}
	}
}

func TestNormalizeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":             "203.0.113.7",
		" 203.0.113.7:443 ":       "203.0.113.7",
		"::ffff:203.0.113.7":      "203.0.113.7",
		"[::ffff:203.0.113.7]:80": "203.0.113.7",
		"2001:db8::1":             "2001:db8::/64",
		"[2001:db8::1]":           "2001:db8::/64",
		"[2001:db8::2]:443":       "2001:db8::/64",
		"fe80::1%eth0":            "fe80::/64",
		"2001:DB8:0:0:ffff::1":    "2001:db8::/64",
		"unknown":                 "unknown",
		"has space":               "sha256:" + hexSum("has space"),
		strings.Repeat("x", 65):   "sha256:" + hexSum(strings.Repeat("x", 65)),
		"":                        "",
	} {
		if got := throttle.NormalizeAddress(in); got != want {
			t.Errorf("NormalizeAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func hexSum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestLockedAPIError(t *testing.T) {
	until := time.Date(2031, 2, 3, 4, 5, 6, 1, time.FixedZone("X", 3600))
	for _, scope := range []string{throttle.ScopeAccount, throttle.ScopeAddress} {
		var err error = &throttle.Locked{Until: until, Scope: scope}
		ae := apierr.From(err)
		if ae.HTTPCode != http.StatusTooManyRequests {
			t.Errorf("HTTPCode = %d, want 429", ae.HTTPCode)
		}
		// Rounded up to the second, in UTC; the same for either scope.
		if want := "too many failed logins; try again after 2031-02-03T03:05:07Z"; ae.Message != want {
			t.Errorf("message = %q, want %q", ae.Message, want)
		}
	}
	exact := &throttle.Locked{Until: time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)}
	if !strings.HasSuffix(exact.APIError().Message, "04:05:06Z") {
		t.Errorf("a whole second was rounded: %q", exact.APIError().Message)
	}
}

// downClient is a client of a port nothing listens on.
func downClient(t *testing.T) *redis.Client {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisDownFailsClosed(t *testing.T) {
	l := throttle.New(downClient(t), "test:down:", throttle.DefaultAccount, throttle.DefaultAddress)
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error with Redis down: the throttle must fail closed", what)
		}
		var lk *throttle.Locked
		if errors.As(err, &lk) {
			t.Errorf("%s: %v is a Locked", what, err)
		}
		if ae := apierr.From(err); ae.HTTPCode != http.StatusServiceUnavailable {
			t.Errorf("%s: apierr.From = %v, want 503", what, ae)
		} else if strings.Contains(ae.Message, "127.0.0.1") || strings.Contains(ae.Message, "alice") {
			t.Errorf("%s: the message %q shows internals", what, ae.Message)
		}
	}
	wait, err := l.Before(ctx, "alice@example.com", "192.0.2.1")
	check("Before", err)
	if wait != 0 {
		t.Errorf("Before wait = %v with an error", wait)
	}
	a, b, err := l.Failed(ctx, "alice@example.com", "192.0.2.1")
	check("Failed", err)
	if a || b {
		t.Errorf("Failed reported locks %v, %v with Redis down", a, b)
	}
	check("Succeeded", l.Succeeded(ctx, "alice@example.com"))
}

func TestOffPolicyTouchesNothing(t *testing.T) {
	l, client, prefix := newLimiter(t, throttle.Policy{}, throttle.Policy{})
	for range 20 {
		fail(t, l, "a", "192.0.2.1")
	}
	if w := before(t, l, "a", "192.0.2.1"); w != 0 {
		t.Errorf("wait = %v with both scopes off", w)
	}
	if keys := client.Keys(ctx, prefix+"*").Val(); len(keys) != 0 {
		t.Errorf("keys %q with both scopes off", keys)
	}
}

func TestNewPanicsOnInvalidPolicy(t *testing.T) {
	for _, p := range []throttle.Policy{
		{FreeFailures: -1, Window: time.Minute},
		{Delay: time.Second, MaxDelay: time.Millisecond, Window: time.Minute},
		{LockAfter: 3, Window: time.Minute},
		{LockAfter: 3, LockFor: time.Minute},
		{Delay: time.Second, MaxDelay: time.Second},
		{LockAfter: 3, LockFor: time.Microsecond, Window: time.Minute},
	} {
		for _, which := range []string{"account", "address"} {
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Errorf("New with %s policy %+v did not panic", which, p)
					}
				}()
				if which == "account" {
					throttle.New(nil, "", p, throttle.Policy{})
				} else {
					throttle.New(nil, "", throttle.Policy{}, p)
				}
			}()
		}
	}
}
