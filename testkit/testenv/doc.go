// Package testenv gives tests real PostgreSQL and Redis to work against.
//
// The servers are named by environment variables that `make test` sets after
// starting private instances:
//
//	SKYFLOW_TEST_DATABASE_URL  an admin URL of a PostgreSQL server
//	SKYFLOW_TEST_REDIS_URL     a Redis URL
//
// Each test gets its own freshly migrated database or its own Redis key
// prefix, removed when the test ends, so tests may run in parallel. A test
// whose variable is missing fails rather than skips: a skipped test proves
// nothing.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// Environment variables naming the test servers.
const (
	DatabaseURLEnv = "SKYFLOW_TEST_DATABASE_URL"
	RedisURLEnv    = "SKYFLOW_TEST_REDIS_URL"
)

// env returns the variable's value or fails the test saying how to set it.
func env(t testing.TB, name, example string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("testenv: %s is not set: run `make test`, which starts private PostgreSQL and Redis servers, "+
			"or set it yourself (for example %s=%s)", name, name, example)
	}
	return v
}

// randomName returns prefix followed by 16 random hex digits.
func randomName(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
