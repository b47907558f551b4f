package credentials_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func TestNewAPIKey(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 10000 {
		key, display, hash := credentials.NewAPIKey()
		if credentials.APIKeyLength != 42 || len(key) != credentials.APIKeyLength {
			t.Fatalf("key length %d, want 42", len(key))
		}
		if !strings.HasPrefix(key, credentials.APIKeyPrefix) {
			t.Fatalf("key %q lacks the prefix", key)
		}
		for _, r := range key[len(credentials.APIKeyPrefix):] {
			if !strings.ContainsRune(base62, r) {
				t.Fatalf("key %q has %q, not base62", key, r)
			}
			counts[r]++
		}
		if display != key[:8] {
			t.Fatalf("display %q, want %q", display, key[:8])
		}
		if want := sha256.Sum256([]byte(key)); !bytes.Equal(hash, want[:]) {
			t.Fatal("hash is not SHA-256 of the key")
		}
		if !credentials.LooksLikeAPIKey(key) {
			t.Fatalf("LooksLikeAPIKey(%q) = false", key)
		}
		h, err := credentials.HashAPIKey(key)
		if err != nil || !bytes.Equal(h, hash) {
			t.Fatalf("HashAPIKey: %v", err)
		}
		if seen[key] {
			t.Fatalf("key %q made twice", key)
		}
		seen[key] = true
	}
	// Every character is used, none grossly more than others (380000
	// draws, about 6129 each).
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for r, n := range counts {
		if n < 5500 || n > 6800 {
			t.Errorf("character %q drawn %d times, want about 6129", r, n)
		}
	}
}

func TestHashAPIKeyMalformed(t *testing.T) {
	good, _, _ := credentials.NewAPIKey()
	for name, s := range map[string]string{
		"empty":      "",
		"prefix":     "sky-",
		"short":      good[:41],
		"long":       good + "a",
		"no prefix":  "abcd" + good[4:],
		"upper":      "SKY-" + good[4:],
		"dash":       good[:41] + "-",
		"space":      good[:41] + " ",
		"non-ascii":  good[:40] + "é",
		"jwt":        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl",
		"NUL":        good[:41] + "\x00",
		"secretlike": "sky-" + strings.Repeat("Z", 37) + "_",
	} {
		if credentials.LooksLikeAPIKey(s) {
			t.Errorf("%s: LooksLikeAPIKey(%q) = true", name, s)
		}
		_, err := credentials.HashAPIKey(s)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != http.StatusUnauthorized {
			t.Errorf("%s: err = %v, want 401", name, err)
			continue
		}
		if len(s) > 8 && strings.Contains(ae.Message, s[4:]) {
			t.Errorf("%s: message %q echoes the key", name, ae.Message)
		}
	}
	// Stable: the same key always hashes the same.
	h1, _ := credentials.HashAPIKey(good)
	h2, _ := credentials.HashAPIKey(strings.Clone(good))
	if !bytes.Equal(h1, h2) {
		t.Error("HashAPIKey is not stable")
	}
}
