package credentials

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

const (
	// APIKeyPrefix starts every API key, so a leaked key is recognisable
	// (secret scanners) and told apart from a JWT bearer token at a glance.
	APIKeyPrefix = "sky-"
	// APIKeyLength is the length of a key: the prefix and 38 characters of
	// base62 from crypto/rand, 38·log2(62) ≈ 226 random bits.
	APIKeyLength = 42
	// apiKeyDisplay is how much of a key lists show: the prefix and 4
	// characters, enough to tell keys apart, far too little to guess one.
	apiKeyDisplay = 8

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// NewAPIKey makes a new API key. It returns the key, shown to its owner once;
// display, its first 8 characters (e.g. "sky-AbCd"), for lists; and hash,
// the only thing to store.
//
// The hash is a plain SHA-256, not a password hash such as argon2: a slow
// hash protects guessable secrets, and a key with 226 random bits cannot be
// guessed however fast each guess is. A fast hash also lets every request
// find its key by an indexed equality lookup.
func NewAPIKey() (key string, display string, hash []byte) {
	var b strings.Builder
	b.Grow(APIKeyLength)
	b.WriteString(APIKeyPrefix)
	buf := make([]byte, 64)
	for b.Len() < APIKeyLength {
		rand.Read(buf) // never fails (crypto/rand crashes the program instead)
		for _, c := range buf {
			// 248 = 4·62: taking only bytes below it keeps every
			// character equally likely (no modulo bias).
			if c < 248 && b.Len() < APIKeyLength {
				b.WriteByte(base62[c%62])
			}
		}
	}
	key = b.String()
	h := sha256.Sum256([]byte(key))
	return key, key[:apiKeyDisplay], h[:]
}

// HashAPIKey returns the hash to look a presented key up by. A string not
// shaped like a key (prefix, length, alphabet) is refused (401) without a
// database round trip, and without being echoed: it may be a real secret
// pasted into the wrong place.
func HashAPIKey(key string) ([]byte, error) {
	if !LooksLikeAPIKey(key) {
		return nil, apierr.Unauthenticated("the API key is malformed: API keys are %d characters starting with %q; check that it was copied whole", APIKeyLength, APIKeyPrefix)
	}
	h := sha256.Sum256([]byte(key))
	return h[:], nil
}

// LooksLikeAPIKey reports whether s has the shape of an API key, for telling
// an API key from a JWT in an Authorization header.
func LooksLikeAPIKey(s string) bool {
	if len(s) != APIKeyLength || !strings.HasPrefix(s, APIKeyPrefix) {
		return false
	}
	for i := len(APIKeyPrefix); i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
