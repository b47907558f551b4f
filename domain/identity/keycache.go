package identity

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// APIKeyCacheTTL is the longest a gateway keeps an API key's principal
// without asking PostgreSQL again. A change is also signalled at once:
// revoking a key or a service account, or setting a principal's roles,
// marks the principal changed in Redis, and every gateway replica checks
// that mark on each request with a cached key (in the same Redis round
// trip time as the rate limit, which it runs beside).
const APIKeyCacheTTL = 30 * time.Second

func (b *Backend) changedKey(principal string) string {
	return b.Settings.RedisPrefix + "principal:changed:" + principal
}

// markChanged records that principal's keys or roles changed now. It runs
// after the change committed; the mark outlives every cache entry made
// before it. If Redis cannot be written, the caches still expire within
// APIKeyCacheTTL, and the failure is logged.
func (b *Backend) markChanged(ctx context.Context, principal string) {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := b.Redis.Set(context.WithoutCancel(ctx), b.changedKey(principal), now, 2*APIKeyCacheTTL).Err(); err != nil {
		slog.ErrorContext(ctx, "cached API keys could not be told of a change; they expire within the cache period",
			"principal", principal, "ttl", APIKeyCacheTTL.String(), "error", err)
	}
}

// ChangedSince reports whether principal's keys or roles changed at or
// after since. The gateway asks this for a key it has cached; an error
// means the answer is unknown, and the caller must not trust its cache.
func (b *Backend) ChangedSince(ctx context.Context, principal string, since time.Time) (bool, error) {
	v, err := b.Redis.Get(ctx, b.changedKey(principal)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	at, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return true, nil // unreadable: treat as changed
	}
	return at >= since.UnixNano(), nil
}
