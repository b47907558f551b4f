// Package throttle slows down and then locks out repeated failed logins, per
// account and per client address, with the counts kept in Redis so that
// every replica of a login function sees the same ones.
//
// # Design
//
// Each scope (the account, the address) has a [Policy] and one Redis hash:
//
//	<prefix>login:acct:<sha256 hex of the normalised account>
//	<prefix>login:addr:<normalised address>
//
// The account is normalised by trimming spaces and lower-casing (emails are
// stored lower-cased), and is hashed so that no email sits in Redis in the
// clear. The address is an IP address: IPv4 as is (IPv4-mapped IPv6
// unmapped), IPv6 grouped by its /64, since one client commonly holds a whole
// /64 and could otherwise change address at every try; a port is dropped.
//
// The hash counts failures in a fixed window: the window opens at the first
// failure and the key expires when it ends (Policy.Window). Before each
// password check [Limiter.Before] asks the caller to wait Policy.Delay for
// the first failure beyond Policy.FreeFailures, doubling with each further
// one up to Policy.MaxDelay (the larger wait of the two scopes): this costs a
// person who mistypes nothing and an attacker trying passwords one after
// another seconds per try. The Policy.LockAfter-th failure in the window
// replaces the count with a lock that expires after Policy.LockFor; while
// locked, Before refuses with a [*Locked] error and failures are not
// counted. When the lock expires the scope starts afresh, so an attacker gets
// at most LockAfter tries per LockFor per account. A success clears the
// account's count (not a lock, and not the address's count: one good
// password from an address says nothing about its other attempts).
//
// Every change is one Lua script on one key, so concurrent failures count
// exactly and exactly one of them reports that it set a lock. Expiry is by
// Redis key TTL, so the application servers' clocks play no part.
//
// # Redis unreachable: fail closed
//
// When Redis cannot be reached (or answers with an error), every method
// returns an error that is an apierr.Unavailable (503), and the login must
// fail: with the throttle off, nothing would stop an attacker from trying
// passwords as fast as the servers can hash them, and an outage of Redis is
// what an attacker would wait or work for. A vault prefers refusing logins
// for the length of a Redis outage to opening that hole. (Succeeded is the
// exception a caller may make: the password was right, and a count left
// behind only expires with its window.)
//
// # Limits
//
// Attempts that all pass Before before the failure that locks is recorded are
// all checked, so an attacker sending many at once gets some more tries
// than LockAfter per lock, bounded by how many password hashes the servers
// compute at once (domain/identity/passwords limits that per process). A lock on an
// account can be set by anyone who knows its email; it ends by itself after
// LockFor, and the message does not say whether the account exists.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Policy is the throttling of one scope. The zero Policy turns the scope off.
type Policy struct {
	// FreeFailures is how many failures in the window cost no wait.
	FreeFailures int
	// Delay is the wait after the first failure beyond FreeFailures; each
	// further failure doubles it, up to MaxDelay. Zero: no slow-down.
	Delay    time.Duration
	MaxDelay time.Duration
	// LockAfter failures in the window lock the scope for LockFor. Zero:
	// never lock.
	LockAfter int
	LockFor   time.Duration
	// Window is how long failures are counted, from the first one.
	Window time.Duration
}

// DefaultAccount and DefaultAddress are the policies for login. An address
// is allowed more (and a later slow-down) because many people can share one
// (an office, a carrier's NAT), while an account has one owner.
var (
	DefaultAccount = Policy{FreeFailures: 3, Delay: 250 * time.Millisecond, MaxDelay: 4 * time.Second,
		LockAfter: 10, LockFor: 15 * time.Minute, Window: 15 * time.Minute}
	DefaultAddress = Policy{FreeFailures: 10, Delay: 250 * time.Millisecond, MaxDelay: 4 * time.Second,
		LockAfter: 50, LockFor: 15 * time.Minute, Window: 15 * time.Minute}
)

func (p Policy) off() bool { return p == Policy{} }

func (p Policy) validate() error {
	switch {
	case p.off():
		return nil
	case p.FreeFailures < 0 || p.Delay < 0 || p.MaxDelay < 0 || p.LockAfter < 0 || p.LockFor < 0 || p.Window < 0:
		return errors.New("negative value")
	case p.Window < time.Millisecond:
		return errors.New("the window must be at least 1ms")
	case p.Delay > 0 && p.MaxDelay < p.Delay:
		return errors.New("the maximum delay must be at least the delay")
	case p.LockAfter > 0 && p.LockFor < time.Millisecond:
		return errors.New("the lock must last at least 1ms when locking is on")
	}
	return nil
}

// delay is the wait after n failures.
func (p Policy) delay(n int64) time.Duration {
	if p.Delay <= 0 || n <= int64(p.FreeFailures) {
		return 0
	}
	d := p.Delay
	for i := n - int64(p.FreeFailures); i > 1 && d < p.MaxDelay; i-- {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Limiter throttles logins; it is safe for concurrent use.
type Limiter struct {
	client           redis.UniversalClient
	prefix           string
	account, address Policy
}

// New returns a Limiter keeping its counts under prefix. It panics on an
// invalid policy (a negative value, a slow-down or lock without a duration):
// a misconfigured throttle must stop the program at start-up, not quietly
// let brute force through.
func New(client redis.UniversalClient, prefix string, account, address Policy) *Limiter {
	if err := account.validate(); err != nil {
		panic("throttle: invalid account policy: " + err.Error())
	}
	if err := address.validate(); err != nil {
		panic("throttle: invalid address policy: " + err.Error())
	}
	return &Limiter{client: client, prefix: prefix, account: account, address: address}
}

// Scope names, in Locked.Scope.
const (
	ScopeAccount = "account"
	ScopeAddress = "address"
)

type scope struct {
	name   string
	key    string
	policy Policy
}

// scopes lists the scopes whose policy is on, the address's only if
// withAddress.
func (l *Limiter) scopes(account, address string, withAddress bool) []scope {
	s := make([]scope, 0, 2)
	if !l.account.off() {
		sum := sha256.Sum256([]byte(NormalizeAccount(account)))
		s = append(s, scope{ScopeAccount, l.prefix + "login:acct:" + hex.EncodeToString(sum[:]), l.account})
	}
	if withAddress && !l.address.off() {
		s = append(s, scope{ScopeAddress, l.prefix + "login:addr:" + NormalizeAddress(address), l.address})
	}
	return s
}

// NormalizeAccount is the form of an account the counts are kept for:
// trimmed and lower-cased.
func NormalizeAccount(account string) string {
	return strings.ToLower(strings.TrimSpace(account))
}

// NormalizeAddress is the form of a client address the counts are kept for:
// an IPv4 address, or the /64 of an IPv6 address, without port or zone.
// Something else (which a caller should not pass) is kept if short and
// printable and hashed otherwise, so it cannot bloat or garble a key.
func NormalizeAddress(address string) string {
	address = strings.TrimSpace(address)
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(address, "["), "]"))
	if err != nil {
		ap, perr := netip.ParseAddrPort(address)
		if perr != nil {
			if len(address) <= 64 && strings.IndexFunc(address, func(r rune) bool { return r <= ' ' || r > '~' }) < 0 {
				return address
			}
			sum := sha256.Sum256([]byte(address))
			return "sha256:" + hex.EncodeToString(sum[:])
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// A scope's hash has a field "n", the failures in the window, or a field
// "locked" while locked; the key's TTL ends the window or the lock.

// beforeScript returns {failures, locked (0/1), TTL in ms}.
var beforeScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'n', 'locked')
return {tonumber(v[1]) or 0, v[2] and 1 or 0, redis.call('PTTL', KEYS[1])}
`)

// failedScript counts a failure (ARGV: LockAfter, LockFor ms, Window ms)
// and returns {1 if it set the lock else 0}.
var failedScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'locked') == 1 then
	return 0
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if redis.call('PTTL', KEYS[1]) < 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local after = tonumber(ARGV[1])
if after > 0 and n >= after then
	redis.call('DEL', KEYS[1])
	redis.call('HSET', KEYS[1], 'locked', '1')
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
return 0
`)

// succeededScript clears the count unless the scope is locked.
var succeededScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'locked') == 1 then
	return 0
end
return redis.call('DEL', KEYS[1])
`)

// Before is called before checking a password. It returns how long the
// caller must wait before checking it (sleeping, bounded by its context),
// or, when the account or the address is locked, a *Locked error. Any other
// error is an apierr.Unavailable: the login must fail (see the package
// comment).
func (l *Limiter) Before(ctx context.Context, account, address string) (wait time.Duration, err error) {
	var locked *Locked
	for _, s := range l.scopes(account, address, true) {
		start := time.Now()
		res, err := beforeScript.Run(ctx, l.client, []string{s.key}).Int64Slice()
		if err != nil {
			return 0, unavailable(err)
		}
		if len(res) != 3 {
			return 0, unavailable(fmt.Errorf("unexpected script result %v", res))
		}
		n, isLocked, ttl := res[0], res[1] == 1, time.Duration(res[2])*time.Millisecond
		if isLocked {
			until := start.Add(max(ttl, 0))
			if locked == nil || until.After(locked.Until) {
				locked = &Locked{Until: until, Scope: s.name}
			}
			continue
		}
		wait = max(wait, s.policy.delay(n))
	}
	if locked != nil {
		return 0, locked
	}
	return wait, nil
}

// Failed records a failed attempt for the account and the address. Each
// flag is true only for the failure that locked that scope, once per lock
// however many fail at once, so the caller emits one security event per
// lock. On error (an apierr.Unavailable) the flags tell what was recorded
// before it.
func (l *Limiter) Failed(ctx context.Context, account, address string) (accountLocked, addressLocked bool, err error) {
	for _, s := range l.scopes(account, address, true) {
		newly, err := failedScript.Run(ctx, l.client, []string{s.key},
			s.policy.LockAfter, s.policy.LockFor.Milliseconds(), s.policy.Window.Milliseconds()).Int64()
		if err != nil {
			return accountLocked, addressLocked, unavailable(err)
		}
		if newly == 1 {
			if s.name == ScopeAccount {
				accountLocked = true
			} else {
				addressLocked = true
			}
		}
	}
	return accountLocked, addressLocked, nil
}

// Succeeded clears the account's failure count after a correct password.
// It leaves a lock in place (a request that passed Before just before the
// lock was set must not lift it) and the address's count alone. An error is
// an apierr.Unavailable; the caller may log it and let the login through.
func (l *Limiter) Succeeded(ctx context.Context, account string) error {
	for _, s := range l.scopes(account, "", false) {
		if err := succeededScript.Run(ctx, l.client, []string{s.key}).Err(); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// unavailable wraps a Redis error so that apierr.From answers 503 while the
// log still gets the cause.
func unavailable(err error) error {
	return fmt.Errorf("throttle: redis: %w: %w",
		apierr.Unavailable("Signing in is unavailable for a moment. Try again shortly."), err)
}

// Locked is the error of Before while the account or the address is locked.
type Locked struct {
	// Until is when the lock ends.
	Until time.Time
	// Scope is ScopeAccount or ScopeAddress, for logs and security events:
	// the client is not told which.
	Scope string
}

func (l *Locked) Error() string {
	return fmt.Sprintf("throttle: %s locked after too many failed logins until %s", l.Scope, l.Until.UTC().Format(time.RFC3339))
}

// APIError is the answer to the client: 429, with the time the lock ends
// (rounded up to the second, so retrying then succeeds). It is the same for
// both scopes and whether or not the account exists.
func (l *Locked) APIError() *apierr.Error {
	until := l.Until.UTC()
	if t := until.Truncate(time.Second); !t.Equal(until) {
		until = t.Add(time.Second)
	}
	return apierr.ResourceExhausted("too many failed logins; try again after %s", until.Format(time.RFC3339))
}

// As lets errors.As, and so apierr.From, find the *apierr.Error of a
// Locked.
func (l *Locked) As(target any) bool {
	if p, ok := target.(**apierr.Error); ok {
		*p = l.APIError()
		return true
	}
	return false
}
