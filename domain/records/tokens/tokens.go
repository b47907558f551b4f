// Package tokens makes the tokens a vault hands out in place of sensitive
// values, for each token type a column can have (API.md, "Token types").
//
// It is deliberately free of key handling: deterministic tokens are computed
// from a seed, a keyed PRF output the caller derives from (key, column group,
// value, attempt), so this package never sees a key and a token never reveals
// its value. Non-deterministic tokens come from crypto/rand.
//
// Deterministic tokens are stored and looked up by equality, so the mapping
// from (type, text, seed) to token is a compatibility promise: changing it
// orphans every token already issued. TestGoldenDeterministic pins it.
package tokens

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Type is a column's token type. The spellings are those of the vault schema;
// it is its own type here so this package depends on nothing else in the repo.
type Type string

const (
	DeterministicUUID    Type = "DETERMINISTIC_UUID"
	NonDeterministicUUID Type = "NON_DETERMINISTIC_UUID"
	DeterministicFPT     Type = "DETERMINISTIC_FPT"
	NonDeterministicFPT  Type = "NON_DETERMINISTIC_FPT"
	PreserveLeft6Right4  Type = "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4"
)

// Deterministic reports whether the same value (in the same column group)
// always gets the same token, which is what makes tokenize and equality
// lookups possible. Such types are made with Deterministic, the others with
// Random.
func (t Type) Deterministic() bool {
	switch t {
	case DeterministicUUID, DeterministicFPT, PreserveLeft6Right4:
		return true
	}
	return false
}

// Valid reports whether t is one of the known token types.
func (t Type) Valid() bool {
	switch t {
	case DeterministicUUID, NonDeterministicUUID, DeterministicFPT, NonDeterministicFPT, PreserveLeft6Right4:
		return true
	}
	return false
}

// MaxLen is the longest token WellFormed accepts. Format-preserving tokens are
// as long as their value, so longer values cannot have such a token.
const MaxLen = 256

// MinSeedLen is the shortest seed Deterministic accepts: a shorter one would
// leave fewer bits of key-dependent entropy than a token can need.
const MinSeedLen = 32

var (
	// ErrNotTokenizable means the value cannot carry a token of the requested
	// type (too few letters/digits, not a card number, …). The wrapping
	// message says why and never contains the value.
	ErrNotTokenizable = errors.New("tokens: value cannot be tokenized with this token type")

	// ErrUnsupportedType means the type is unknown, or was passed to the
	// wrong constructor (a deterministic type to Random or the other way round).
	ErrUnsupportedType = errors.New("tokens: unsupported token type")
)

// maxDraws bounds the redraws that keep a token different from its value.
// Every tokenizable value has at least 89 acceptable tokens, so a redraw is
// needed with probability ≤ 1/89 and reaching the bound is not a real event;
// it exists so a broken random source cannot loop forever.
const maxDraws = 1000

// Random returns a fresh token for a value of a non-deterministic type, drawn
// from crypto/rand.
func Random(t Type, text string) (string, error) {
	switch t {
	case NonDeterministicUUID:
		u, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("tokens: reading random bytes: %w", err)
		}
		return u.String(), nil
	case NonDeterministicFPT:
		return fpt(text, &randSource{})
	}
	return "", fmt.Errorf("%w: %q is not a non-deterministic token type", ErrUnsupportedType, string(t))
}

// Deterministic returns the token for a value of a deterministic type from
// seed, a keyed PRF output (at least MinSeedLen bytes) the caller derives from
// (key, column group, value, attempt). The same type, seed and text always
// give the same token. On a collision with another value's token the caller
// asks again with the seed of the next attempt.
func Deterministic(t Type, text string, seed []byte) (string, error) {
	if !t.Deterministic() {
		return "", fmt.Errorf("%w: %q is not a deterministic token type", ErrUnsupportedType, string(t))
	}
	if len(seed) < MinSeedLen {
		return "", fmt.Errorf("tokens: seed has %d bytes, want at least %d", len(seed), MinSeedLen)
	}
	ks := newKeystream(seed, t)
	switch t {
	case DeterministicUUID:
		return seededUUID(ks), nil
	case DeterministicFPT:
		return fpt(text, ks)
	default: // PreserveLeft6Right4
		return preserve(text, ks)
	}
}

// WellFormed reports whether s could be a token at all, so that malformed
// tokens are rejected early with a clear error instead of a failed lookup:
// 1–MaxLen bytes of valid UTF-8 without control characters. Every token this
// package returns is well-formed.
func WellFormed(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf { // fast path: ASCII must be printable
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if unicode.IsControl(r) {
			return false
		}
		i += size
	}
	return true
}

// Luhn reports whether digits, a non-empty string of ASCII digits, passes the
// Luhn (mod 10) check that card numbers carry. Anything else reports false.
func Luhn(digits string) bool {
	if digits == "" {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// seededUUID makes an RFC 9562 version 8 ("custom") UUID from the keystream:
// 122 key-dependent bits, so it says nothing about the value.
func seededUUID(src *keystream) string {
	var u uuid.UUID
	for i := range u {
		u[i], _ = src.next() // a keystream never fails
	}
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	return u.String()
}

// fpt makes a format-preserving token: ASCII digits, lower-case and
// upper-case letters are replaced by uniformly drawn characters of the same
// class, everything else is kept, so length and shape survive and the token
// still fits the column.
func fpt(text string, src source) (string, error) {
	if err := tokenShape(text); err != nil {
		return "", err
	}
	alnum, digits := 0, 0
	onlyCard := true // digits, spaces and dashes only
	last := -1       // index of the last digit
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case isDigit(c):
			alnum++
			digits++
			last = i
		case isLower(c), isUpper(c):
			alnum++
			onlyCard = false
		case c == ' ', c == '-':
		default:
			onlyCard = false
		}
	}
	if alnum < 4 {
		return "", fmt.Errorf("%w: a format-preserving token needs at least 4 letters or digits", ErrNotTokenizable)
	}
	// Something shaped like a card number must not yield a token that a
	// payment system would take for a real card.
	card := onlyCard && digits >= 12 && digits <= 19

	buf := []byte(text)
	for range maxDraws {
		for i := 0; i < len(text); i++ {
			var n, base byte
			switch c := text[i]; {
			case isDigit(c):
				n, base = 10, '0'
			case isLower(c):
				n, base = 26, 'a'
			case isUpper(c):
				n, base = 26, 'A'
			default:
				continue
			}
			v, err := uniform(src, n)
			if err != nil {
				return "", err
			}
			buf[i] = base + v
		}
		if card {
			failLuhn(buf, last)
		}
		if string(buf) != text {
			return string(buf), nil
		}
	}
	return "", errors.New("tokens: could not draw a token different from the value")
}

// preserve makes a DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4 token: the first 6
// and last 4 digits of a card number (its issuer and the part people show)
// and its separators are kept, the middle digits are replaced, and the result
// fails the Luhn check so it cannot be mistaken for a card.
func preserve(text string, src source) (string, error) {
	if err := tokenShape(text); err != nil {
		return "", err
	}
	var pos []int // indexes of the digits
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case isDigit(c):
			pos = append(pos, i)
		case c == ' ', c == '-':
		default:
			return "", fmt.Errorf("%w: a left-6/right-4 token needs a card number of digits, spaces and dashes", ErrNotTokenizable)
		}
	}
	if len(pos) < 12 || len(pos) > 19 {
		return "", fmt.Errorf("%w: a left-6/right-4 token needs a card number of 12 to 19 digits, got %d", ErrNotTokenizable, len(pos))
	}
	middle := pos[6 : len(pos)-4]
	buf := []byte(text)
	for range maxDraws {
		for _, i := range middle {
			v, err := uniform(src, 10)
			if err != nil {
				return "", err
			}
			buf[i] = '0' + v
		}
		failLuhn(buf, middle[len(middle)-1])
		if string(buf) != text {
			return string(buf), nil
		}
	}
	return "", errors.New("tokens: could not draw a token different from the value")
}

// tokenShape rejects values whose format-preserving token would not be
// WellFormed: the token keeps the length and the non-alphanumeric characters.
func tokenShape(text string) error {
	switch {
	case len(text) > MaxLen:
		return fmt.Errorf("%w: a format-preserving token keeps the value's length, and the value is longer than %d bytes", ErrNotTokenizable, MaxLen)
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: the value is not valid UTF-8", ErrNotTokenizable)
	}
	for _, r := range text {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: a format-preserving token keeps the value's control characters, which tokens may not contain", ErrNotTokenizable)
		}
	}
	return nil
}

// failLuhn makes the digits of buf fail the Luhn check by stepping the digit
// at index i to the next digit, if they pass. One step always suffices: each
// digit's contribution to the mod-10 sum is distinct for 0–9 whether or not
// it is doubled, so changing a digit always changes the sum. Averaged over
// the other digits the stepped digit stays uniform.
func failLuhn(buf []byte, i int) {
	var digits [MaxLen]byte
	n := 0
	for _, c := range buf {
		if isDigit(c) {
			digits[n] = c
			n++
		}
	}
	if Luhn(string(digits[:n])) {
		buf[i] = '0' + (buf[i]-'0'+1)%10
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// source is a stream of uniformly random bytes.
type source interface {
	next() (byte, error)
}

// uniform draws a value in [0, n) without modulo bias by rejecting the bytes
// at or above the largest multiple of n.
func uniform(src source, n byte) (byte, error) {
	limit := 256 - 256%int(n)
	for {
		b, err := src.next()
		if err != nil {
			return 0, err
		}
		if int(b) < limit {
			return b % n, nil
		}
	}
}

// keystream expands a seed into as many bytes as a token needs:
// block i = HMAC-SHA256(seed, label ‖ 0x00 ‖ uint64be(i)). The label names the
// token type, so one seed gives unrelated tokens for different types.
type keystream struct {
	mac     hash.Hash
	label   string
	counter uint64
	block   [sha256.Size]byte
	pos     int
}

const keystreamLabel = "skyflow/tokens/v1/"

func newKeystream(seed []byte, t Type) *keystream {
	return &keystream{
		mac:   hmac.New(sha256.New, seed),
		label: keystreamLabel + string(t),
		pos:   sha256.Size,
	}
}

func (k *keystream) next() (byte, error) {
	if k.pos == len(k.block) {
		var ctr [9]byte
		binary.BigEndian.PutUint64(ctr[1:], k.counter)
		k.counter++
		k.mac.Reset()
		k.mac.Write([]byte(k.label))
		k.mac.Write(ctr[:])
		k.mac.Sum(k.block[:0])
		k.pos = 0
	}
	b := k.block[k.pos]
	k.pos++
	return b, nil
}

// randSource reads crypto/rand in small batches.
type randSource struct {
	buf [64]byte
	pos int
	n   int
}

func (r *randSource) next() (byte, error) {
	if r.pos == r.n {
		if _, err := rand.Read(r.buf[:]); err != nil {
			return 0, fmt.Errorf("tokens: reading random bytes: %w", err)
		}
		r.pos, r.n = 0, len(r.buf)
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}
