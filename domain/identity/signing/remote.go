package signing

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrKeySetUnavailable is wrapped by the error [Remote.Verify] returns when
// no key set could be fetched and none is cached: the token could not be
// judged, which is not the client's fault (the gateway answers 503). Every
// other error from Verify refuses the token (401).
var ErrKeySetUnavailable = errors.New("signing: key set unavailable")

const (
	// DefaultMaxAge is how long a fetched key set is used before it is
	// fetched again, when RemoteOptions.MaxAge is not set.
	DefaultMaxAge = 5 * time.Minute
	// DefaultMinRefetch spaces fetches when RemoteOptions.MinRefetch is
	// not set.
	DefaultMinRefetch = 10 * time.Second

	// fetchTimeout bounds one fetch. A fetch runs on behalf of every
	// caller waiting for it, so it does not end with the context of the
	// caller that started it.
	fetchTimeout = 10 * time.Second
	// retryUnavailable spaces fetches while none has succeeded (if
	// MinRefetch is not shorter): callers meanwhile get
	// ErrKeySetUnavailable at once, so an outage of the user service at
	// start-up is not met with a fetch per request.
	retryUnavailable = time.Second
	// maxJWKSLen bounds the document parsed; real ones are a few hundred
	// bytes a key.
	maxJWKSLen = 1 << 20
)

// Fetch returns the current JWKS document, as served at
// GET /.well-known/jwks.json. It must honour ctx.
type Fetch func(ctx context.Context) ([]byte, error)

// RemoteOptions configure a [Remote].
type RemoteOptions struct {
	// MaxAge is how long a fetched key set is used before the next Verify
	// starts fetching it again in the background (default DefaultMaxAge).
	MaxAge time.Duration
	// MinRefetch is the least time between the start of one fetch and the
	// next (default DefaultMinRefetch). In particular a token whose kid is
	// not in the cached set causes a fetch only if none started within
	// MinRefetch, so made-up kids cannot make the gateway hammer the user
	// service; such a token is refused meanwhile.
	MinRefetch time.Duration
	// Now is the clock for token times (default time.Now). Cache ages use
	// the real clock.
	Now func() time.Time
	// Logger receives failed fetches (default slog.Default()). Nothing
	// sensitive is logged: no tokens, only the fetch error.
	Logger *slog.Logger
}

// Remote verifies access tokens against a key set fetched from the user
// service, for the gateway. The set is fetched on first use, fetched again
// once it is older than MaxAge, and fetched again at once (within the
// MinRefetch rate limit) when a token names a kid it lacks, so a key
// rotation needs no restart. At most one fetch runs at a time; concurrent
// callers share it. A failed fetch keeps the cached set in use.
//
// A Remote is safe for concurrent use.
type Remote struct {
	fetch            Fetch
	issuer, audience string
	o                RemoteOptions
	// clock measures cache ages and fetch spacing; tests replace it.
	clock func() time.Time

	// set is the last key set fetched, nil until one is.
	set atomic.Pointer[keySet]

	mu        sync.Mutex
	inflight  *fetchCall // the fetch running, or nil
	lastStart time.Time  // by clock, when the last fetch started
	lastErr   error      // of the last fetch to finish
}

// keySet is an immutable snapshot of a fetched JWKS.
type keySet struct {
	keys    map[string]ed25519.PublicKey
	fetched time.Time // by Remote.clock, when its fetch started
}

// fetchCall is one fetch; done is closed once set or err is set.
type fetchCall struct {
	done chan struct{}
	set  *keySet
	err  error
}

// NewRemote returns a Remote verifying tokens of issuer for audience with
// the key sets fetch returns. It does no I/O: the set is fetched on first
// use. issuer and audience must be set; Verify fails otherwise, since an
// empty expected issuer or audience would disable those checks.
func NewRemote(fetch Fetch, issuer, audience string, o RemoteOptions) *Remote {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MinRefetch <= 0 {
		o.MinRefetch = DefaultMinRefetch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Remote{fetch: fetch, issuer: issuer, audience: audience, o: o, clock: time.Now}
}

// Verify checks token by the rules of [VerifyWithJWKS] against the cached
// key set, fetching it as described at [Remote]. A refused token gives a 401
// *apierr.Error with a short reason that never quotes the token. If the set
// is needed but none could be fetched and none is cached, the error wraps
// ErrKeySetUnavailable and is not an *apierr.Error. A Remote without an
// issuer or audience refuses with a plain error.
//
// Tokens that are malformed or not EdDSA are refused before the key set is
// looked at, so they never cause a fetch.
func (r *Remote) Verify(ctx context.Context, token string) (*Claims, error) {
	return verify(token, r.issuer, r.audience, r.o.Now(), func(kid string) (ed25519.PublicKey, error) {
		return r.publicKey(ctx, kid)
	})
}

// publicKey returns the key named kid, fetching the set again if it lacks
// kid and the rate limit allows.
func (r *Remote) publicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	ks, err := r.current(ctx)
	if err != nil {
		return nil, &lookupError{err}
	}
	if pub, ok := ks.keys[kid]; ok {
		return pub, nil
	}
	if !plausibleKid(kid) {
		return nil, errUnknownKey // the user service cannot have made it
	}
	if c := r.start(ctx, r.o.MinRefetch); c != nil {
		// Whether it succeeded or not, the set stored is the one to use.
		c.wait(ctx)
	}
	// Another caller's fetch may also have finished since ks was loaded.
	if pub, ok := r.set.Load().keys[kid]; ok {
		return pub, nil
	}
	return nil, errUnknownKey
}

// current returns the cached set, fetching it if there is none. A set older
// than MaxAge is still returned, while a fetch starts in the background.
func (r *Remote) current(ctx context.Context) (*keySet, error) {
	if ks := r.set.Load(); ks != nil {
		if r.clock().Sub(ks.fetched) >= r.o.MaxAge {
			r.start(ctx, r.o.MinRefetch)
		}
		return ks, nil
	}
	c := r.start(ctx, min(r.o.MinRefetch, retryUnavailable))
	if c == nil {
		// A fetch failed a moment ago; do not try again yet.
		if ks := r.set.Load(); ks != nil {
			return ks, nil
		}
		r.mu.Lock()
		err := r.lastErr
		r.mu.Unlock()
		if err == nil {
			return nil, ErrKeySetUnavailable
		}
		return nil, fmt.Errorf("%w: %w", ErrKeySetUnavailable, err)
	}
	ks, err := c.wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySetUnavailable, err)
	}
	return ks, nil
}

// start returns the fetch running, or starts one if none started within
// interval, or returns nil.
func (r *Remote) start(ctx context.Context, interval time.Duration) *fetchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	now := r.clock()
	if !r.lastStart.IsZero() && now.Sub(r.lastStart) < interval {
		return nil
	}
	c := &fetchCall{done: make(chan struct{})}
	r.inflight, r.lastStart = c, now
	go r.run(context.WithoutCancel(ctx), c, now)
	return c
}

// run performs fetch c, started at started.
func (r *Remote) run(ctx context.Context, c *fetchCall, started time.Time) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	ks, err := r.load(ctx, started)
	if err == nil {
		r.set.Store(ks)
	} else if old := r.set.Load(); old != nil {
		r.o.Logger.WarnContext(ctx, "JWKS fetch failed; verifying with the cached key set",
			"error", err, "cached_for", r.clock().Sub(old.fetched).Round(time.Second).String())
	} else {
		r.o.Logger.ErrorContext(ctx, "JWKS fetch failed; no key set to verify access tokens with", "error", err)
	}
	r.mu.Lock()
	r.inflight, r.lastErr = nil, err
	r.mu.Unlock()
	c.set, c.err = ks, err
	close(c.done)
}

// load fetches and parses a key set. A panic in fetch is an error rather
// than the end of the gateway.
func (r *Remote) load(ctx context.Context, started time.Time) (ks *keySet, err error) {
	defer func() {
		if p := recover(); p != nil {
			ks, err = nil, fmt.Errorf("signing: fetch JWKS: panic: %v", p)
		}
	}()
	doc, err := r.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: fetch JWKS: %w", err)
	}
	if len(doc) > maxJWKSLen {
		return nil, fmt.Errorf("signing: JWKS: %d bytes, more than %d", len(doc), maxJWKSLen)
	}
	// RFC 7517 §5.1: "keys" is required. Without this check a stray "{}"
	// or "null" would parse as an empty set and refuse every token.
	var shape struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &shape); err != nil {
		return nil, fmt.Errorf("signing: JWKS: %w", err)
	}
	if shape.Keys == nil {
		return nil, errors.New(`signing: JWKS: no "keys" array`)
	}
	keys, err := parseJWKS(doc)
	if err != nil {
		return nil, err
	}
	return &keySet{keys: keys, fetched: started}, nil
}

// wait returns the outcome of c, or ctx's error if ctx ends first.
func (c *fetchCall) wait(ctx context.Context) (*keySet, error) {
	select {
	case <-c.done:
		return c.set, c.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}
