package tokens_test

import (
	"crypto/sha256"
	"errors"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/records/tokens"
)

var deterministicTypes = []tokens.Type{tokens.DeterministicUUID, tokens.DeterministicFPT, tokens.PreserveLeft6Right4}

// FuzzDeterministic checks that no value makes Deterministic panic, and that
// every token it returns has the promised shape and is reproducible.
func FuzzDeterministic(f *testing.F) {
	for _, s := range shapes {
		f.Add(uint8(1), s, []byte("seed"))
	}
	f.Add(uint8(2), "4111 1111 1111 1111", []byte{})
	f.Add(uint8(0), "", []byte{1, 2, 3})
	f.Add(uint8(1), "a\x00bcd\xff", []byte("x"))
	f.Fuzz(func(t *testing.T, which uint8, value string, seedIn []byte) {
		typ := deterministicTypes[int(which)%len(deterministicTypes)]
		seed := seedIn
		if len(seed) < tokens.MinSeedLen {
			s := sha256.Sum256(seedIn)
			seed = s[:]
		}
		tok, err := tokens.Deterministic(typ, value, seed)
		again, err2 := tokens.Deterministic(typ, value, seed)
		if tok != again || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %q/%v then %q/%v", tok, err, again, err2)
		}
		if err != nil {
			if typ == tokens.DeterministicUUID || !errors.Is(err, tokens.ErrNotTokenizable) {
				t.Fatalf("%s: unexpected error %v", typ, err)
			}
			return
		}
		switch typ {
		case tokens.DeterministicUUID:
			u, err := uuid.Parse(tok)
			if err != nil || u.Version() != 8 || u.Variant() != uuid.RFC4122 || !tokens.WellFormed(tok) {
				t.Fatalf("bad UUID token %q: %v", tok, err)
			}
		case tokens.DeterministicFPT:
			checkFPT(t, value, tok)
		case tokens.PreserveLeft6Right4:
			checkPreserve(t, value, tok)
		}
	})
}

// FuzzWellFormed checks WellFormed against a plain rune-by-rune definition.
func FuzzWellFormed(f *testing.F) {
	for _, s := range []string{"", "a", "4111 1111 1111 1111", "a\nb", "\xff", "Zoë", "\u0085", "\x7f", "東京", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 1 && len(s) <= tokens.MaxLen && utf8.ValidString(s)
		for _, r := range s {
			if unicode.IsControl(r) {
				want = false
			}
		}
		if got := tokens.WellFormed(s); got != want {
			t.Fatalf("WellFormed(%q) = %v, want %v", s, got, want)
		}
	})
}
