package credentials_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// fresh signs and verifies a new assertion valid for ttl from now.
func fresh(t *testing.T, ttl time.Duration) (string, *credentials.AssertionClaims) {
	t.Helper()
	a, _ := testPairs(t)
	now := time.Now()
	s, err := credentials.SignAssertion(a.creds, ttl, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := credentials.VerifyAssertion(context.Background(), s, tokenURI, now, lookupOf(a))
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func wantReused(t *testing.T, err error) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.HTTPCode != http.StatusUnauthorized || ae.Message != "the assertion was already used; sign a new one" {
		t.Fatalf("err = %v, want 401 already used", err)
	}
}

func TestReplaySecondUseRefused(t *testing.T) {
	client, prefix := testenv.Redis(t)
	g := credentials.NewReplayGuard(client, prefix)
	ctx := context.Background()
	s, c := fresh(t, 10*time.Minute)
	if err := g.Use(ctx, c, s); err != nil {
		t.Fatal(err)
	}
	wantReused(t, g.Use(ctx, c, s))

	// One key, under the prefix, remembered until ClockSkew past exp.
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], prefix) {
		t.Fatalf("keys = %v", keys)
	}
	ttl, err := client.PTTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if max := time.Until(c.ExpiresAt.Time) + credentials.ClockSkew + time.Second; ttl <= 10*time.Minute-time.Minute || ttl > max {
		t.Errorf("TTL = %v, want about 10m + %v", ttl, credentials.ClockSkew)
	}
	if strings.Contains(keys[0], s) || strings.Contains(keys[0], c.ID) {
		t.Errorf("key %q holds the assertion or its jti in the clear", keys[0])
	}
}

func TestReplayConcurrent(t *testing.T) {
	client, prefix := testenv.Redis(t)
	g := credentials.NewReplayGuard(client, prefix)
	s, c := fresh(t, 10*time.Minute)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = g.Use(context.Background(), c, s)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantReused(t, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent uses succeeded, want exactly 1", ok, n)
	}
}

func TestReplayIndependent(t *testing.T) {
	client, prefix := testenv.Redis(t)
	g := credentials.NewReplayGuard(client, prefix)
	ctx := context.Background()
	s1, c1 := fresh(t, 10*time.Minute)
	s2, c2 := fresh(t, 10*time.Minute)
	if err := g.Use(ctx, c1, s1); err != nil {
		t.Fatal(err)
	}
	if err := g.Use(ctx, c2, s2); err != nil {
		t.Fatalf("a different assertion was refused: %v", err)
	}
	// Another guard prefix is another namespace.
	if err := credentials.NewReplayGuard(client, prefix+"other:").Use(ctx, c1, s1); err != nil {
		t.Fatal(err)
	}

	// Without a jti (as SDKs sign) the whole assertion is the identity.
	a, _ := testPairs(t)
	exp := time.Now().Add(10 * time.Minute)
	sdk := func(ctxClaim string) (string, *credentials.AssertionClaims) {
		cl := claimsOf(a)
		cl["exp"] = exp.Unix()
		cl["ctx"] = ctxClaim
		s := sign(t, jwt.SigningMethodRS256, a.priv, cl)
		c, err := credentials.VerifyAssertion(ctx, s, tokenURI, time.Now(), lookupOf(a))
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	sa, ca := sdk("one")
	sb, cb := sdk("two")
	if ca.ID != "" {
		t.Fatal("SDK assertion has a jti")
	}
	if err := g.Use(ctx, ca, sa); err != nil {
		t.Fatal(err)
	}
	if err := g.Use(ctx, cb, sb); err != nil {
		t.Fatalf("a different SDK assertion was refused: %v", err)
	}
	wantReused(t, g.Use(ctx, ca, sa))

	// A jti is per issuer: reused by its issuer it is refused even in a
	// different assertion; another issuer's equal jti is its own.
	c3 := *c1
	wantReused(t, g.Use(ctx, &c3, s1+"x"))
	c3.Issuer = "another-client"
	if err := g.Use(ctx, &c3, s1); err != nil {
		t.Fatalf("another issuer's jti was refused: %v", err)
	}
}

func TestReplayExpiryFrees(t *testing.T) {
	client, prefix := testenv.Redis(t)
	g := credentials.NewReplayGuard(client, prefix)
	ctx := context.Background()
	// An exp such that exp + ClockSkew is a second away.
	c := &credentials.AssertionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        "jti-expiry",
			Issuer:    "client",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Second - credentials.ClockSkew)),
		},
	}
	if err := g.Use(ctx, c, "a"); err != nil {
		t.Fatal(err)
	}
	wantReused(t, g.Use(ctx, c, "a"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Second - credentials.ClockSkew))
		err := g.Use(ctx, c, "a")
		if err == nil {
			break
		}
		wantReused(t, err)
		if time.Now().After(deadline) {
			t.Fatal("the assertion is still remembered long after it expired")
		}
	}

	// Past exp + ClockSkew it is refused as expired without touching Redis.
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-credentials.ClockSkew - time.Second))
	wantRefused(t, g.Use(ctx, c, "b"), "b", "expired")
	// And claims with no exp are refused.
	wantRefused(t, g.Use(ctx, &credentials.AssertionClaims{}, "c"), "c", `no "exp"`)
	wantRefused(t, g.Use(ctx, nil, "c"), "c", `no "exp"`)
}

func TestReplayRedisDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	g := credentials.NewReplayGuard(client, "test:down:")
	s, c := fresh(t, 10*time.Minute)
	err = g.Use(context.Background(), c, s)
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.HTTPCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503", err)
	}
	if strings.Contains(ae.Message, addr) {
		t.Errorf("message %q names the Redis address", ae.Message)
	}
}
