package tokens_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/records/tokens"
)

// seedOf gives a reproducible 32-byte seed, standing in for the caller's PRF.
func seedOf(parts ...any) []byte {
	s := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return s[:]
}

// checkFPT fails unless tok is a format-preserving token of value: same
// length, same class at every byte, other bytes kept, different from value,
// well-formed, and failing Luhn if value is shaped like a card.
func checkFPT(t testing.TB, value, tok string) {
	t.Helper()
	if len(tok) != len(value) {
		t.Fatalf("token %q has length %d, value has %d", tok, len(tok), len(value))
	}
	for i := 0; i < len(value); i++ {
		v, k := value[i], tok[i]
		if class(v) != class(k) || (class(v) == 0 && v != k) {
			t.Fatalf("token %q byte %d is %q, value has %q", tok, i, k, v)
		}
	}
	if tok == value {
		t.Fatalf("token equals the value %q", value)
	}
	if !tokens.WellFormed(tok) {
		t.Fatalf("token %q is not well-formed", tok)
	}
	if _, ok := cardDigits(value); ok {
		if td, _ := cardDigits(tok); tokens.Luhn(td) {
			t.Fatalf("token %q of card-shaped value passes Luhn", tok)
		}
	}
}

func class(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return 1
	case 'a' <= c && c <= 'z':
		return 2
	case 'A' <= c && c <= 'Z':
		return 3
	}
	return 0
}

// cardDigits returns the digits of s and whether s is shaped like a card
// number: only digits, spaces and dashes, with 12–19 digits.
func cardDigits(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			b.WriteByte(c)
		case c == ' ', c == '-':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() >= 12 && b.Len() <= 19
}

var shapes = []string{
	"4111111111111111",
	"4111 1111 1111 1111",
	"4111-1111-1111-1111",
	"378282246310005",
	"6011000990139424",
	"4222222222222",
	"6304000000000000018", // 19 digits
	"123-45-6789",
	"123456789",
	"jane.doe@example.com",
	"Jane.Doe+Vault@Example.COM",
	"MiXeD CaSe 42",
	"Zoë Ångström-Łukasz",
	"東京都 1-2-3 ビル4F",
	"+1 (415) 555-0100",
	"abcd",
	"0000",
	"DE89 3704 0044 0532 0130 00",
	"1990-01-31",
}

func TestFPTPreservesFormat(t *testing.T) {
	for _, v := range shapes {
		t.Run(v, func(t *testing.T) {
			for i := range 50 {
				tok, err := tokens.Deterministic(tokens.DeterministicFPT, v, seedOf(v, i))
				if err != nil {
					t.Fatal(err)
				}
				checkFPT(t, v, tok)
				tok, err = tokens.Random(tokens.NonDeterministicFPT, v)
				if err != nil {
					t.Fatal(err)
				}
				checkFPT(t, v, tok)
			}
		})
	}
}

func TestDeterministicIsStable(t *testing.T) {
	for _, typ := range []tokens.Type{tokens.DeterministicUUID, tokens.DeterministicFPT, tokens.PreserveLeft6Right4} {
		for _, v := range []string{"4111111111111111", "4111-1111-1111-1111", "5500 0000 0000 0004"} {
			seed := seedOf(typ, v)
			a, err := tokens.Deterministic(typ, v, seed)
			if err != nil {
				t.Fatal(err)
			}
			b, err := tokens.Deterministic(typ, v, append([]byte(nil), seed...))
			if err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Errorf("%s: same seed gave %q and %q", typ, a, b)
			}
		}
	}
}

func TestDeterministicSeedsDiffer(t *testing.T) {
	cases := []struct {
		typ   tokens.Type
		value string
	}{
		{tokens.DeterministicUUID, "anything"},
		{tokens.DeterministicFPT, "4111111111111111"},
		{tokens.DeterministicFPT, "jane.doe@example.com"},
		{tokens.PreserveLeft6Right4, "6304000000000000018"}, // 9 middle digits
	}
	for _, c := range cases {
		seen := map[string]bool{}
		for i := range 200 {
			tok, err := tokens.Deterministic(c.typ, c.value, seedOf("differ", i))
			if err != nil {
				t.Fatal(err)
			}
			seen[tok] = true
		}
		if len(seen) < 200 {
			t.Errorf("%s %q: 200 seeds gave only %d distinct tokens", c.typ, c.value, len(seen))
		}
	}
}

// The same seed must not give related tokens for different types.
func TestTypesAreSeparated(t *testing.T) {
	v := "4111111111111111"
	seed := seedOf("sep")
	fpt, _ := tokens.Deterministic(tokens.DeterministicFPT, v, seed)
	pre, _ := tokens.Deterministic(tokens.PreserveLeft6Right4, v, seed)
	if fpt[6:12] == pre[6:12] {
		t.Errorf("FPT %q and PRESERVE %q share their middle digits", fpt, pre)
	}
}

func TestRandomDiffers(t *testing.T) {
	for _, c := range []struct {
		typ   tokens.Type
		value string
	}{
		{tokens.NonDeterministicUUID, "x"},
		{tokens.NonDeterministicFPT, "4111111111111111"},
		{tokens.NonDeterministicFPT, "Jane Doe Smith"},
	} {
		seen := map[string]bool{}
		for range 500 {
			tok, err := tokens.Random(c.typ, c.value)
			if err != nil {
				t.Fatal(err)
			}
			seen[tok] = true
		}
		if len(seen) < 500 {
			t.Errorf("%s: 500 calls gave only %d distinct tokens", c.typ, len(seen))
		}
	}
}

func TestUUIDs(t *testing.T) {
	for i := range 100 {
		tok, err := tokens.Deterministic(tokens.DeterministicUUID, "v", seedOf(i))
		if err != nil {
			t.Fatal(err)
		}
		u, err := uuid.Parse(tok)
		if err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if u.Version() != 8 || u.Variant() != uuid.RFC4122 || u.String() != tok {
			t.Fatalf("%q: version %d variant %v", tok, u.Version(), u.Variant())
		}
		if !tokens.WellFormed(tok) {
			t.Fatalf("%q not well-formed", tok)
		}

		tok, err = tokens.Random(tokens.NonDeterministicUUID, "v")
		if err != nil {
			t.Fatal(err)
		}
		if u, err = uuid.Parse(tok); err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("random %q: version %d, %v", tok, u.Version(), err)
		}
	}
}

// luhnCard makes a Luhn-valid card number of n digits.
func luhnCard(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range n - 1 {
		b[i] = byte('0' + r.IntN(10))
	}
	for d := byte('0'); d <= '9'; d++ {
		b[n-1] = d
		if tokens.Luhn(string(b)) {
			return string(b)
		}
	}
	panic("unreachable")
}

func withSeparators(r *rand.Rand, digits string) string {
	var b strings.Builder
	for i := 0; i < len(digits); i++ {
		if i > 0 && i%4 == 0 {
			switch r.IntN(3) {
			case 1:
				b.WriteByte(' ')
			case 2:
				b.WriteByte('-')
			}
		}
		b.WriteByte(digits[i])
	}
	return b.String()
}

func TestCardTokensFailLuhn(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := range 3000 {
		card := withSeparators(r, luhnCard(r, 12+r.IntN(8)))
		det, err := tokens.Deterministic(tokens.DeterministicFPT, card, seedOf("luhn", i))
		if err != nil {
			t.Fatal(err)
		}
		checkFPT(t, card, det)
		rnd, err := tokens.Random(tokens.NonDeterministicFPT, card)
		if err != nil {
			t.Fatal(err)
		}
		checkFPT(t, card, rnd)
		pre, err := tokens.Deterministic(tokens.PreserveLeft6Right4, card, seedOf("pre", i))
		if err != nil {
			t.Fatal(err)
		}
		checkPreserve(t, card, pre)
	}
}

func checkPreserve(t testing.TB, value, tok string) {
	t.Helper()
	checkFPT(t, value, tok) // same shape, differs, fails Luhn
	vd, _ := cardDigits(value)
	td, _ := cardDigits(tok)
	if vd[:6] != td[:6] || vd[len(vd)-4:] != td[len(td)-4:] {
		t.Fatalf("token %q does not keep first 6 and last 4 digits of %q", tok, value)
	}
}

func TestPreserve(t *testing.T) {
	for _, v := range []string{
		"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
		"411111111111", "6304000000000000018", "5500 0000 0000 0004", "4000 0012 3456 7899",
	} {
		for i := range 200 {
			tok, err := tokens.Deterministic(tokens.PreserveLeft6Right4, v, seedOf(v, i))
			if err != nil {
				t.Fatalf("%q: %v", v, err)
			}
			checkPreserve(t, v, tok)
		}
	}
}

func TestNotTokenizable(t *testing.T) {
	seed := seedOf("x")
	cases := []struct {
		typ   tokens.Type
		value string
	}{
		{tokens.DeterministicFPT, ""},
		{tokens.DeterministicFPT, "abc"},
		{tokens.DeterministicFPT, "1-2-3"},
		{tokens.DeterministicFPT, "éèêë ü"},
		{tokens.DeterministicFPT, strings.Repeat("a", tokens.MaxLen+1)},
		{tokens.DeterministicFPT, "line one\nline two"},
		{tokens.DeterministicFPT, "abcd\xff"},
		{tokens.NonDeterministicFPT, "ab"},
		{tokens.NonDeterministicFPT, "tab\there"},
		{tokens.PreserveLeft6Right4, "41111111111"},          // 11 digits
		{tokens.PreserveLeft6Right4, "41111111111111111111"}, // 20 digits
		{tokens.PreserveLeft6Right4, "4111 1111 1111 111x"},  // letter
		{tokens.PreserveLeft6Right4, "4111.1111.1111.1111"},  // dots
		{tokens.PreserveLeft6Right4, ""},
		{tokens.PreserveLeft6Right4, "123-45-6789"}, // SSN
		{tokens.PreserveLeft6Right4, "4111111111111111" + strings.Repeat(" ", tokens.MaxLen)},
	}
	for _, c := range cases {
		var err error
		if c.typ.Deterministic() {
			_, err = tokens.Deterministic(c.typ, c.value, seed)
		} else {
			_, err = tokens.Random(c.typ, c.value)
		}
		if !errors.Is(err, tokens.ErrNotTokenizable) {
			t.Errorf("%s %q: got %v, want ErrNotTokenizable", c.typ, c.value, err)
			continue
		}
		if len(c.value) >= 4 && strings.Contains(err.Error(), c.value) {
			t.Errorf("error %q reveals the value", err)
		}
	}
	// Exactly 4 letters/digits is enough.
	if _, err := tokens.Deterministic(tokens.DeterministicFPT, "a-b-c-d", seed); err != nil {
		t.Errorf("4 letters: %v", err)
	}
	// UUID tokens fit any value.
	for _, v := range []string{"", "\x00", strings.Repeat("x", 10000)} {
		if _, err := tokens.Deterministic(tokens.DeterministicUUID, v, seed); err != nil {
			t.Errorf("DeterministicUUID: %v", err)
		}
		if _, err := tokens.Random(tokens.NonDeterministicUUID, v); err != nil {
			t.Errorf("NonDeterministicUUID: %v", err)
		}
	}
}

func TestWrongTypeOrSeed(t *testing.T) {
	seed := seedOf("x")
	for _, typ := range []tokens.Type{tokens.NonDeterministicUUID, tokens.NonDeterministicFPT, "", "deterministic_uuid", "BOGUS"} {
		if _, err := tokens.Deterministic(typ, "4111111111111111", seed); !errors.Is(err, tokens.ErrUnsupportedType) {
			t.Errorf("Deterministic(%q): %v", typ, err)
		}
	}
	for _, typ := range []tokens.Type{tokens.DeterministicUUID, tokens.DeterministicFPT, tokens.PreserveLeft6Right4, "", "BOGUS"} {
		if _, err := tokens.Random(typ, "4111111111111111"); !errors.Is(err, tokens.ErrUnsupportedType) {
			t.Errorf("Random(%q): %v", typ, err)
		}
	}
	for _, s := range [][]byte{nil, make([]byte, tokens.MinSeedLen-1)} {
		if _, err := tokens.Deterministic(tokens.DeterministicFPT, "4111111111111111", s); err == nil {
			t.Errorf("seed of %d bytes accepted", len(s))
		}
	}
	if _, err := tokens.Deterministic(tokens.DeterministicFPT, "4111111111111111", make([]byte, 64)); err != nil {
		t.Errorf("64-byte seed: %v", err)
	}
}

func TestTypeMethods(t *testing.T) {
	for typ, det := range map[tokens.Type]bool{
		tokens.DeterministicUUID: true, tokens.NonDeterministicUUID: false,
		tokens.DeterministicFPT: true, tokens.NonDeterministicFPT: false,
		tokens.PreserveLeft6Right4: true,
	} {
		if typ.Deterministic() != det || !typ.Valid() {
			t.Errorf("%s: Deterministic=%v Valid=%v", typ, typ.Deterministic(), typ.Valid())
		}
	}
	if tokens.Type("x").Valid() || tokens.Type("x").Deterministic() {
		t.Error("unknown type reported valid or deterministic")
	}
}

func TestLuhn(t *testing.T) {
	for s, want := range map[string]bool{
		"4111111111111111": true, "4111111111111112": false,
		"79927398713": true, "79927398710": false, "378282246310005": true,
		"0": true, "18": true, "": false, "4111 1111 1111 1111": false, "x": false,
	} {
		if got := tokens.Luhn(s); got != want {
			t.Errorf("Luhn(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestWellFormed(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "4111111111111111": true, "Zoë Ångström": true, "東京": true,
		"with space": true, strings.Repeat("x", tokens.MaxLen): true,
		"": false, strings.Repeat("x", tokens.MaxLen+1): false,
		"a\nb": false, "\t": false, "a\x00": false, "a\x7f": false,
		"a\u0085": false, "\xff": false, "\xed\xa0\x80": false, // C1 control, invalid, surrogate
		"ab\xc3": false,
	} {
		if got := tokens.WellFormed(s); got != want {
			t.Errorf("WellFormed(%q) = %v, want %v", s, got, want)
		}
	}
}

// chiSquare of counts against a uniform distribution.
func chiSquare(counts []int, total int) float64 {
	exp := float64(total) / float64(len(counts))
	x := 0.0
	for _, c := range counts {
		d := float64(c) - exp
		x += d * d / exp
	}
	return x
}

// TestUniformity is a sanity check that draws are unbiased. Seeds come from a
// fixed ChaCha8 stream, so the test is reproducible and cannot flake; the
// bounds sit above the 1e-6 tail (≈42 for 9 d.f., ≈75 for 25 d.f.) and far
// below what a stuck position or a wrong range gives. Modulo bias is too small
// to see here; TestUniformNoBias checks it exactly.
func TestUniformity(t *testing.T) {
	const n = 10000
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	seed := make([]byte, 32)
	check := func(typ tokens.Type, value string) {
		counts := make([][]int, len(value))
		for i := range counts {
			counts[i] = make([]int, 26)
		}
		for range n {
			for i := range seed {
				seed[i] = byte(r.Uint32())
			}
			tok, err := tokens.Deterministic(typ, value, seed)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(tok); i++ {
				switch c := tok[i]; {
				case '0' <= c && c <= '9':
					counts[i][c-'0']++
				case 'a' <= c && c <= 'z':
					counts[i][c-'a']++
				case 'A' <= c && c <= 'Z':
					counts[i][c-'A']++
				}
			}
		}
		for i := 0; i < len(value); i++ {
			k := 0
			switch class(value[i]) {
			case 1:
				k = 10
			case 2, 3:
				k = 26
			default:
				continue
			}
			if typ == tokens.PreserveLeft6Right4 && (i < 6 || i >= len(value)-4) {
				continue
			}
			bound := 45.0 // 9 d.f.
			if k == 26 {
				bound = 80 // 25 d.f.
			}
			if x := chiSquare(counts[i][:k], n); x > bound {
				t.Errorf("%s %q position %d: chi-square %.1f over %d classes: %v", typ, value, i, x, k, counts[i][:k])
			}
		}
	}
	check(tokens.DeterministicFPT, "4111111111111111") // every position incl. the Luhn-stepped one
	check(tokens.DeterministicFPT, "123456789")
	check(tokens.DeterministicFPT, "abcdXYZW")
	check(tokens.PreserveLeft6Right4, "4111111111111111")
}

// TestGoldenDeterministic pins the token function: deterministic tokens are
// stored and looked up by equality, so a change here orphans issued tokens.
func TestGoldenDeterministic(t *testing.T) {
	seed := func(first byte) []byte {
		s := make([]byte, 32)
		for i := range s {
			s[i] = byte(i)
		}
		s[0] = first
		return s
	}
	for _, c := range []struct {
		typ         tokens.Type
		seed        byte
		value, want string
	}{
		{tokens.DeterministicUUID, 0, "4111111111111111", "3699e03b-6d46-80e5-8788-3d816cd0eb01"},
		{tokens.DeterministicFPT, 0, "4111111111111111", "0436853281129784"},
		{tokens.DeterministicFPT, 0, "4111-1111-1111-1111", "0436-8532-8112-9784"},
		{tokens.DeterministicFPT, 0, "Jane.Doe@example.com", "Moby.Cnr@kyruvdw.iek"},
		{tokens.DeterministicFPT, 0, "123-45-6789", "043-68-5328"},
		{tokens.PreserveLeft6Right4, 0, "4111 1111 1111 1111", "4111 1157 9829 1111"},
		// The draws pass Luhn (1809970132439675, 4111116173981111), so the
		// last replaced digit is stepped to the next one.
		{tokens.DeterministicFPT, 7, "4111111111111111", "1809970132439676"},
		{tokens.PreserveLeft6Right4, 2, "4111111111111111", "4111116173991111"},
	} {
		got, err := tokens.Deterministic(c.typ, c.value, seed(c.seed))
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s %q = %q, want %q", c.typ, c.value, got, c.want)
		}
	}
}
