package signing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// These tests need no database: keys are made here and served as the JWKS
// Keyring.JWKS would publish. They reuse validClaims, forge, b64json,
// want401, clock and the test issuer and audience of signing_test.go.

// testKey is a signing key as the user service holds it.
type testKey struct {
	kid  string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

// newTestKey makes a key with a kid shaped as Keyring makes them.
func newTestKey(t *testing.T) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: randomKid(), pub: pub, priv: priv}
}

func randomKid() string {
	b := make([]byte, kidBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwksOf is the document Keyring.JWKS serves for keys, newest first.
func jwksOf(t *testing.T, keys ...testKey) []byte {
	t.Helper()
	set := jwks{Keys: []jwk{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.pub),
			Kid: k.kid, Alg: Alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is the auth-jwks function as the gateway's Fetch sees it,
// counting fetches.
type jwksServer struct {
	n atomic.Int64

	mu   sync.Mutex
	doc  []byte
	err  error
	gate chan struct{} // if set, fetches wait until it is closed
}

func (s *jwksServer) fetch(ctx context.Context) ([]byte, error) {
	s.n.Add(1)
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.doc, nil
}

func (s *jwksServer) serve(doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.err = doc, nil
}

func (s *jwksServer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *jwksServer) hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	s.gate = g
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(g)
	})
}

func (s *jwksServer) count() int { return int(s.n.Load()) }

// remoteEnv is a Remote on a jwksServer, with a token clock that stands
// still and a cache clock the test moves.
type remoteEnv struct {
	srv   *jwksServer
	r     *Remote
	now   time.Time // token clock
	cache *clock    // cache ages
}

const (
	testMaxAge     = 5 * time.Minute
	testMinRefetch = 10 * time.Second
)

func newRemoteEnv(t *testing.T, doc []byte) *remoteEnv {
	t.Helper()
	e := &remoteEnv{srv: &jwksServer{doc: doc}, now: newClock().Now(), cache: newClock()}
	e.r = NewRemote(e.srv.fetch, testIssuer, testAudience, RemoteOptions{
		MaxAge: testMaxAge, MinRefetch: testMinRefetch,
		Now:    func() time.Time { return e.now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	e.r.clock = e.cache.Now
	t.Cleanup(func() { settle(e.r) })
	return e
}

// settle waits for the fetch running, if any.
func settle(r *Remote) {
	r.mu.Lock()
	c := r.inflight
	r.mu.Unlock()
	if c != nil {
		<-c.done
	}
}

func (e *remoteEnv) token(t *testing.T, k testKey) string {
	t.Helper()
	return forge(t, jwt.SigningMethodEdDSA, k.priv, k.kid, validClaims(e.now))
}

func (e *remoteEnv) mustVerify(t *testing.T, name, tok string) *Claims {
	t.Helper()
	c, err := e.r.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("%s: Verify: %v", name, err)
	}
	return c
}

func (e *remoteEnv) wantFetches(t *testing.T, when string, n int) {
	t.Helper()
	if got := e.srv.count(); got != n {
		t.Fatalf("%s: %d fetches, want %d", when, got, n)
	}
}

// wantRefused checks err refuses the token (a short 401) rather than
// reporting the key set unavailable.
func wantRefused(t *testing.T, name, tok string, err error) {
	t.Helper()
	if errors.Is(err, ErrKeySetUnavailable) {
		t.Errorf("%s: error %v is ErrKeySetUnavailable, want a refusal", name, err)
		return
	}
	want401(t, name, tok, err)
}

// wantUnavailable checks err reports the key set unavailable, is not a
// 401, and does not quote the token.
func wantUnavailable(t *testing.T, name, tok string, err error) {
	t.Helper()
	var ae *apierr.Error
	switch {
	case !errors.Is(err, ErrKeySetUnavailable):
		t.Errorf("%s: error = %v, want ErrKeySetUnavailable", name, err)
	case errors.As(err, &ae):
		t.Errorf("%s: error %v is an *apierr.Error, want a plain error", name, err)
	case strings.Contains(err.Error(), tok):
		t.Errorf("%s: error quotes the token", name)
	}
}

func TestRemoteAcceptsAValidTokenAndFetchesOnce(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	e.wantFetches(t, "NewRemote", 0) // no I/O until used

	c := validClaims(e.now)
	c.Roles = []string{"vault_owner", "auditor"}
	tok := forge(t, jwt.SigningMethodEdDSA, k.priv, k.kid, c)
	got := e.mustVerify(t, "valid token", tok)
	if got.Subject != c.Subject || got.ID != c.ID || got.Kind != KindUser ||
		strings.Join(got.Roles, ",") != "vault_owner,auditor" {
		t.Errorf("claims = %+v, want %+v", got, c)
	}
	e.wantFetches(t, "first Verify", 1)

	e.mustVerify(t, "same token again", tok)
	e.mustVerify(t, "another token", e.token(t, k))
	e.cache.Add(testMaxAge - time.Nanosecond)
	e.mustVerify(t, "just before MaxAge", tok)
	e.wantFetches(t, "later Verifies within MaxAge", 1)
}

func TestRemoteRefusesAttacks(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	good := e.token(t, k)
	e.mustVerify(t, "control", good) // the set is cached from here on
	now := e.now

	with := func(f func(*Claims)) Claims {
		c := validClaims(now)
		f(&c)
		return c
	}
	signed := func(c Claims) string { return forge(t, jwt.SigningMethodEdDSA, k.priv, k.kid, c) }
	parts := strings.Split(good, ".")
	pubDER, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newTestKey(t)
	noneHeader := b64json(t, map[string]string{"alg": "none", "typ": "JWT", "kid": k.kid})
	payload := b64json(t, validClaims(now))

	attacks := map[string]string{
		"expired": signed(with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-Leeway - time.Second)) })),
		"not yet valid": signed(with(func(c *Claims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(Leeway + time.Second))
		})),
		"issued in the future": signed(with(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })),
		"no exp":               signed(with(func(c *Claims) { c.ExpiresAt = nil })),
		"no jti":               signed(with(func(c *Claims) { c.ID = "" })),
		"no subject":           signed(with(func(c *Claims) { c.Subject = "" })),
		"wrong issuer":         signed(with(func(c *Claims) { c.Issuer = "https://evil.test" })),
		"wrong audience":       signed(with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other-api"} })),
		"tampered roles": parts[0] + "." + b64json(t, with(func(c *Claims) {
			c.Roles = []string{"vault_owner", "platform_admin"}
		})) + "." + parts[2],
		"tampered signature":         parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
		"alg none":                   noneHeader + "." + payload + ".",
		"alg none with signature":    noneHeader + "." + payload + "." + parts[2],
		"alg none via library":       forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, k.kid, validClaims(now)),
		"HS256 with raw public key":  forge(t, jwt.SigningMethodHS256, []byte(k.pub), k.kid, validClaims(now)),
		"HS256 with PKIX public key": forge(t, jwt.SigningMethodHS256, pubDER, k.kid, validClaims(now)),
		"HS256 with JWKS x": forge(t, jwt.SigningMethodHS256,
			[]byte(base64.RawURLEncoding.EncodeToString(k.pub)), k.kid, validClaims(now)),
		"RS256 from an RSA key": forge(t, jwt.SigningMethodRS256, rsaKey, k.kid, validClaims(now)),
		"unknown kid":           e.token(t, stranger),
		"implausible kid":       forge(t, jwt.SigningMethodEdDSA, stranger.priv, "../../etc/passwd", validClaims(now)),
		"real kid, another key": forge(t, jwt.SigningMethodEdDSA, stranger.priv, k.kid, validClaims(now)),
		"missing kid":           forge(t, jwt.SigningMethodEdDSA, k.priv, "", validClaims(now)),
		"crit header": func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, validClaims(now))
			tk.Header["kid"], tk.Header["crit"] = k.kid, []string{"exp"}
			s, _ := tk.SignedString(k.priv)
			return s
		}(),
		"empty":   "",
		"garbage": "garbage",
		"huge":    parts[0] + "." + strings.Repeat("A", 10000) + "." + parts[2],
	}
	for name, tok := range attacks {
		_, err := e.r.Verify(t.Context(), tok)
		wantRefused(t, name, tok, err)
	}
	// All within MinRefetch of the first fetch: the unknown kid was
	// refused without asking the user service again.
	e.wantFetches(t, "after the attacks", 1)

	// Past MinRefetch the unknown kid makes one fetch, and is still refused.
	e.cache.Add(testMinRefetch)
	for range 3 {
		_, err := e.r.Verify(t.Context(), attacks["unknown kid"])
		wantRefused(t, "unknown kid past MinRefetch", attacks["unknown kid"], err)
	}
	e.wantFetches(t, "unknown kid past MinRefetch", 2)
	// An implausible kid never makes a fetch.
	e.cache.Add(testMinRefetch)
	_, err = e.r.Verify(t.Context(), attacks["implausible kid"])
	wantRefused(t, "implausible kid", attacks["implausible kid"], err)
	e.wantFetches(t, "implausible kid", 2)
}

// Tokens that cannot be EdDSA tokens are refused before the key set is
// needed: they cause no fetch, and are 401 even while the set is
// unavailable.
func TestRemoteRefusesForgeriesWithoutFetching(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, nil)
	e.srv.fail(errors.New("connection refused"))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	payload := b64json(t, validClaims(e.now))
	for name, tok := range map[string]string{
		"alg none":    b64json(t, map[string]string{"alg": "none", "kid": k.kid}) + "." + payload + ".",
		"HS256":       forge(t, jwt.SigningMethodHS256, []byte(k.pub), k.kid, validClaims(e.now)),
		"RS256":       forge(t, jwt.SigningMethodRS256, rsaKey, k.kid, validClaims(e.now)),
		"missing kid": forge(t, jwt.SigningMethodEdDSA, k.priv, "", validClaims(e.now)),
		"garbage":     "a.b.c",
		"empty":       "",
	} {
		_, err := e.r.Verify(t.Context(), tok)
		wantRefused(t, name, tok, err)
	}
	e.wantFetches(t, "forgeries", 0)
}

func TestRemoteUnknownKidRefetchesOncePerMinRefetch(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	e.mustVerify(t, "control", e.token(t, k))
	e.cache.Add(testMinRefetch)

	// Many requests at once, each with a made-up kid, while the user
	// service is slow: one fetch between them.
	release := e.srv.hold()
	const n = 64
	var ready, done sync.WaitGroup
	errs := make([]error, n)
	toks := make([]string, n)
	for i := range n {
		toks[i] = e.token(t, newTestKey(t))
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			_, errs[i] = e.r.Verify(context.Background(), toks[i])
		}()
	}
	ready.Wait()
	time.Sleep(20 * time.Millisecond) // let most of them join the fetch
	release()
	done.Wait()
	for i, err := range errs {
		wantRefused(t, fmt.Sprintf("made-up kid %d", i), toks[i], err)
	}
	e.wantFetches(t, "concurrent unknown kids", 2)

	// More made-up kids within MinRefetch: none fetch.
	e.cache.Add(testMinRefetch - time.Nanosecond)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			tok := e.token(t, newTestKey(t))
			_, err := e.r.Verify(context.Background(), tok)
			wantRefused(t, "made-up kid within MinRefetch", tok, err)
		})
	}
	wg.Wait()
	e.wantFetches(t, "unknown kids within MinRefetch", 2)

	// Once MinRefetch has passed, one more.
	e.cache.Add(time.Nanosecond)
	for range n {
		wg.Go(func() {
			tok := e.token(t, newTestKey(t))
			_, err := e.r.Verify(context.Background(), tok)
			wantRefused(t, "made-up kid past MinRefetch", tok, err)
		})
	}
	wg.Wait()
	e.wantFetches(t, "unknown kids past MinRefetch", 3)
	// The good key still verifies throughout.
	e.mustVerify(t, "control after", e.token(t, k))
}

func TestRemoteFollowsRotation(t *testing.T) {
	k1, k2 := newTestKey(t), newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k1))
	tok1 := e.token(t, k1)
	e.mustVerify(t, "old key", tok1)

	// The user service rotates: k2 signs, k1 still verifies.
	e.srv.serve(jwksOf(t, k2, k1))
	tok2 := e.token(t, k2)

	// Within MinRefetch of the last fetch a new kid is refused (the price
	// of the rate limit) without a fetch...
	e.cache.Add(testMinRefetch / 2)
	_, err := e.r.Verify(t.Context(), tok2)
	wantRefused(t, "new key within MinRefetch", tok2, err)
	e.wantFetches(t, "new key within MinRefetch", 1)

	// ...and accepted once it has passed, by the same Remote, which waits
	// for the (slow) fetch.
	e.cache.Add(testMinRefetch / 2)
	time.AfterFunc(20*time.Millisecond, e.srv.hold())
	e.mustVerify(t, "new key", tok2)
	e.wantFetches(t, "new key", 2)
	e.mustVerify(t, "old key after rotation", tok1)
	e.mustVerify(t, "new key again", tok2)
	e.wantFetches(t, "known keys", 2)

	// k1 retires; once the set is refreshed its tokens are refused.
	e.srv.serve(jwksOf(t, k2))
	e.cache.Add(testMaxAge)
	e.mustVerify(t, "new key while the set refreshes", tok2)
	settle(e.r)
	e.wantFetches(t, "after MaxAge", 3)
	_, err = e.r.Verify(t.Context(), tok1)
	wantRefused(t, "retired key", tok1, err)
	e.mustVerify(t, "new key after retirement", tok2)
}

func TestRemoteUnavailableWithNothingCached(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, nil)
	e.srv.fail(errors.New("dial tcp: connection refused"))
	tok := e.token(t, k)

	_, err := e.r.Verify(t.Context(), tok)
	wantUnavailable(t, "first Verify", tok, err)
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not give the cause", err)
	}
	e.wantFetches(t, "first Verify", 1)

	// Right after a failure, callers are answered without a fetch each.
	for range 5 {
		_, err = e.r.Verify(t.Context(), tok)
		wantUnavailable(t, "Verify right after the failure", tok, err)
	}
	e.wantFetches(t, "right after the failure", 1)

	e.cache.Add(retryUnavailable)
	_, err = e.r.Verify(t.Context(), tok)
	wantUnavailable(t, "Verify a second later", tok, err)
	e.wantFetches(t, "a second later", 2)

	// A document that is not a key set is a failure too.
	for _, doc := range []string{`not json`, `{}`, `null`, `{"keys":null}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"short","kid":"k"}]}`} {
		e.srv.serve([]byte(doc))
		e.cache.Add(retryUnavailable)
		_, err = e.r.Verify(t.Context(), tok)
		wantUnavailable(t, "bad document "+doc, tok, err)
	}

	// The user service comes back.
	e.srv.serve(jwksOf(t, k))
	e.cache.Add(retryUnavailable)
	e.mustVerify(t, "after recovery", tok)
}

func TestRemoteUnavailableWhenTheCallerGivesUp(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	tok := e.token(t, k)

	release := e.srv.hold()
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := e.r.Verify(ctx, tok)
	wantUnavailable(t, "caller's deadline", tok, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the deadline", err)
	}

	// The fetch was not the caller's to cancel: it completes for the next.
	release()
	settle(e.r)
	e.mustVerify(t, "next caller", tok)
	e.wantFetches(t, "after the slow fetch", 1)
}

func TestRemoteKeepsTheCachedSetWhenFetchFails(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	tok := e.token(t, k)
	e.mustVerify(t, "before the outage", tok)

	e.srv.fail(errors.New("503 from auth-jwks"))
	// Stale: a refresh starts, fails, and the cached set goes on verifying.
	e.cache.Add(testMaxAge)
	e.mustVerify(t, "stale, refresh failing", tok)
	settle(e.r)
	e.mustVerify(t, "after the failed refresh", tok)
	e.wantFetches(t, "one failed refresh", 2)

	// A failed refresh is not retried before MinRefetch...
	e.cache.Add(testMinRefetch - time.Nanosecond)
	e.mustVerify(t, "within MinRefetch of the failure", tok)
	settle(e.r)
	e.wantFetches(t, "within MinRefetch of the failure", 2)
	// ...then is, and the set still verifies.
	e.cache.Add(time.Nanosecond)
	e.mustVerify(t, "MinRefetch after the failure", tok)
	settle(e.r)
	e.wantFetches(t, "second failed refresh", 3)

	// An unknown kid whose refetch fails is refused, not unavailable.
	e.cache.Add(testMinRefetch)
	other := e.token(t, newTestKey(t))
	_, err := e.r.Verify(t.Context(), other)
	wantRefused(t, "unknown kid, refetch failing", other, err)
	e.wantFetches(t, "unknown kid, refetch failing", 4)

	// A malformed document does not replace the cached set either.
	e.srv.serve([]byte(`{}`))
	e.cache.Add(testMinRefetch)
	e.mustVerify(t, "malformed document served", tok)
	settle(e.r)
	e.mustVerify(t, "after the malformed document", tok)
	e.wantFetches(t, "malformed document", 5)
}

func TestRemoteRefetchesAfterMaxAge(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	tok := e.token(t, k)
	e.mustVerify(t, "first", tok)

	e.cache.Add(testMaxAge - time.Nanosecond)
	e.mustVerify(t, "just before MaxAge", tok)
	settle(e.r)
	e.wantFetches(t, "just before MaxAge", 1)

	e.cache.Add(time.Nanosecond)
	e.mustVerify(t, "at MaxAge", tok)
	settle(e.r)
	e.wantFetches(t, "at MaxAge", 2)

	// The refreshed set is fresh again.
	e.cache.Add(testMaxAge - time.Nanosecond)
	e.mustVerify(t, "within the new MaxAge", tok)
	settle(e.r)
	e.wantFetches(t, "within the new MaxAge", 2)
}

func TestRemoteConcurrentFirstUseFetchesOnce(t *testing.T) {
	k := newTestKey(t)
	e := newRemoteEnv(t, jwksOf(t, k))
	release := e.srv.hold()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if _, err := e.r.Verify(context.Background(), e.token(t, k)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	release()
	wg.Wait()
	e.wantFetches(t, "concurrent first use", 1)
}

func TestRemoteNeedsIssuerAndAudience(t *testing.T) {
	k := newTestKey(t)
	srv := &jwksServer{doc: jwksOf(t, k)}
	tok := forge(t, jwt.SigningMethodEdDSA, k.priv, k.kid, validClaims(time.Now()))
	for _, ia := range [][2]string{{"", testAudience}, {testIssuer, ""}} {
		_, err := NewRemote(srv.fetch, ia[0], ia[1], RemoteOptions{}).Verify(t.Context(), tok)
		var ae *apierr.Error
		if err == nil || errors.As(err, &ae) {
			t.Errorf("issuer %q audience %q: error %v, want a configuration error", ia[0], ia[1], err)
		}
	}
	if srv.count() != 0 {
		t.Errorf("an unconfigured Remote fetched")
	}
}

func TestRemoteDefaults(t *testing.T) {
	r := NewRemote(nil, testIssuer, testAudience, RemoteOptions{})
	if r.o.MaxAge != DefaultMaxAge || r.o.MinRefetch != DefaultMinRefetch || r.o.Now == nil || r.o.Logger == nil {
		t.Errorf("defaults = %+v", r.o)
	}
}

// TestGatewayVerifiesKeyringTokens runs Remote on what a real Keyring
// publishes and issues, through a rotation. Unlike the tests above it needs
// PostgreSQL, so its name does not match -run Remote.
func TestGatewayVerifiesKeyringTokens(t *testing.T) {
	e := newEnv(t)
	k := e.ring()
	var fetches atomic.Int64
	cache := newClock()
	r := NewRemote(func(ctx context.Context) ([]byte, error) {
		fetches.Add(1)
		return k.JWKS(ctx)
	}, testIssuer, testAudience, RemoteOptions{Now: e.clk.Now})
	r.clock = cache.Now
	t.Cleanup(func() { settle(r) })

	tok1, c1 := issue(t, k, userClaims(), 0)
	got, err := r.Verify(t.Context(), tok1)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !sameClaims(t, *got, c1) {
		t.Errorf("claims = %+v, want %+v", *got, c1)
	}

	if _, err := k.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok2, _ := issue(t, k, userClaims(), 0)
	cache.Add(DefaultMinRefetch)
	for name, tok := range map[string]string{"new key": tok2, "old key": tok1} {
		if _, err := r.Verify(t.Context(), tok); err != nil {
			t.Errorf("%s: Verify: %v", name, err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}
