package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// ReplayGuard makes each assertion usable once, so an assertion seen in a
// log or on the wire cannot be traded for a second access token. Its memory
// is Redis, shared by every gateway, and each entry lives only until the
// assertion expires (at most MaxAssertionLifetime + ClockSkew).
type ReplayGuard struct {
	client redis.UniversalClient
	prefix string
}

// NewReplayGuard returns a guard keeping its entries under prefix in client.
func NewReplayGuard(client redis.UniversalClient, prefix string) *ReplayGuard {
	return &ReplayGuard{client: client, prefix: prefix + "sa-assertion:"}
}

// Use records the assertion, by its jti (per issuer) when it has one and
// otherwise by the SHA-256 of the whole assertion, until ClockSkew past its
// exp; a second Use before then is refused (401). The record is one SET NX
// with an expiry, so of concurrent uses exactly one succeeds, on any number
// of gateways. If Redis cannot be reached the assertion is refused (503):
// failing open would make every assertion replayable during an outage.
//
// Call it after VerifyAssertion, with the claims it returned, so only
// assertions with a valid signature and a bounded exp take up memory.
func (g *ReplayGuard) Use(ctx context.Context, c *AssertionClaims, assertion string) error {
	if c == nil || c.ExpiresAt == nil {
		return apierr.Unauthenticated("the assertion has no \"exp\" claim; set it to at most 60 minutes from now")
	}
	ttl := time.Until(c.ExpiresAt.Time) + ClockSkew
	if ttl <= 0 {
		return apierr.Unauthenticated("the assertion expired at %s; sign a new one", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	// Whole milliseconds, rounded up: Redis takes PX in milliseconds and
	// remembering a little longer is the safe side.
	ttl = ttl.Truncate(time.Millisecond) + time.Millisecond

	var key string
	if c.ID != "" {
		// Issuer and jti, length-prefixed so no two pairs spell the same;
		// hashed so a long jti cannot make a long key.
		h := sha256.Sum256([]byte(strconv.Itoa(len(c.Issuer)) + ":" + c.Issuer + ":" + c.ID))
		key = g.prefix + "jti:" + hex.EncodeToString(h[:])
	} else {
		h := sha256.Sum256([]byte(assertion))
		key = g.prefix + "sha256:" + hex.EncodeToString(h[:])
	}
	fresh, err := g.client.SetNX(ctx, key, 1, ttl).Result()
	if err != nil {
		return fmt.Errorf("%w (redis: %w)", apierr.Unavailable("assertions cannot be checked for reuse right now; try again shortly"), err)
	}
	if !fresh {
		return apierr.Unauthenticated("the assertion was already used; sign a new one")
	}
	return nil
}
