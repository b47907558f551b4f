package testenv

import "testing"

// RedisURL is the URL of the test Redis server, for code under test that
// connects by itself (such as the local platform's functions).
func RedisURL(t testing.TB) string {
	t.Helper()
	return env(t, RedisURLEnv, "redis://127.0.0.1:6379/0")
}
