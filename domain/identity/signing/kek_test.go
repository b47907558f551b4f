package signing

import (
	"context"
	"crypto/rand"
	"github.com/golang-jwt/jwt/v5"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// A KEK rotation rewraps the signing keys: tokens signed before still
// verify, and the new KEK alone signs with the same key.
func TestKEKRotationRewrapsSigningKeys(t *testing.T) {
	newKEK := func() kek.KEK {
		key := make([]byte, kek.KeySize)
		rand.Read(key)
		k, err := kek.NewLocal(key)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ctx := context.Background()
	pool := testenv.Pool(t)
	opts := Options{Issuer: "skyflow", Audience: "skyflow-api"}
	old, fresh := newKEK(), newKEK()
	token, _, err := NewKeyring(pool, old, opts).Issue(ctx, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user:ada"}, Kind: KindUser}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := RewrapKeys(ctx, pool, kek.NewRing(fresh, old), false)
	if err != nil || n != 1 {
		t.Fatalf("rewrapped %d, %v", n, err)
	}
	kr := NewKeyring(pool, fresh, opts)
	if _, err := kr.Verify(ctx, token); err != nil {
		t.Fatalf("a token from before the rotation: %v", err)
	}
	next, _, err := kr.Issue(ctx, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user:ada"}, Kind: KindUser}, 0)
	if err != nil {
		t.Fatalf("the new KEK alone cannot sign: %v", err)
	}
	if kidOf(t, next) != kidOf(t, token) {
		t.Fatal("the rotation made a new signing key instead of rewrapping the old one")
	}
}
