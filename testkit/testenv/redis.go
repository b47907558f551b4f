package testenv

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Redis returns a client for the server named by SKYFLOW_TEST_REDIS_URL and
// a key prefix unique to this test ("test:<random>:"). The test must put its
// keys under the prefix: they are deleted, and the client closed, when the
// test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	raw := env(t, RedisURLEnv, "redis://127.0.0.1:6379/0")
	opts, err := redis.ParseURL(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL, password and all
		}
		t.Fatalf("testenv: %s is not a valid Redis URL: %v", RedisURLEnv, err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		t.Fatalf("testenv: redis ping: %v", err)
	}
	prefix := randomName("test:") + ":"
	t.Cleanup(func() {
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := deletePrefix(ctx, client, prefix); err != nil {
			t.Errorf("testenv: delete redis keys %s*: %v", prefix, err)
		}
	})
	return client, prefix
}

// deletePrefix removes every key under prefix, scanning rather than using
// KEYS so a shared server is not blocked.
func deletePrefix(ctx context.Context, client *redis.Client, prefix string) error {
	iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return client.Unlink(ctx, batch...).Err()
	}
	return nil
}
