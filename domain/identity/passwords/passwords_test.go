package passwords_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity/passwords"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// cheap keeps tests fast; it is within the accepted bounds but not Default.
var cheap = passwords.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const good = "correct horse battery staple"

func TestRoundTripDefault(t *testing.T) {
	h, err := passwords.Hash(good, passwords.Default)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q: want the PHC prefix with Default's parameters", h)
	}
	if strings.Contains(h, good) {
		t.Error("the hash contains the password")
	}
	ok, rehash, err := passwords.Verify(good, h)
	if err != nil || !ok || rehash {
		t.Errorf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, rehash, err = passwords.Verify(good+"!", h)
	if err != nil || ok || rehash {
		t.Errorf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
}

func TestWrongPassword(t *testing.T) {
	h, err := passwords.Hash(good, cheap)
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", good + " ", good + good} {
		if ok, rehash, err := passwords.Verify(wrong, h); err != nil || ok || rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
		}
	}
}

func TestSaltIsRandom(t *testing.T) {
	a, _ := passwords.Hash(good, cheap)
	b, _ := passwords.Hash(good, cheap)
	if a == b {
		t.Errorf("two hashes of one password are equal: %q", a)
	}
}

// TestReferenceVectors checks hashes made by the reference implementation
// (libargon2's argon2id_hash_encoded), so stored hashes interoperate.
func TestReferenceVectors(t *testing.T) {
	for _, c := range []struct{ password, encoded string }{
		{"correct horse battery staple", "$argon2id$v=19$m=64,t=2,p=1$c2t5Zmxvdy10ZXN0LXNhbHQ$l1mHXbJ2O0Nr/DdV3YcoZFWtN82kbZaeRWktCLyIs3o"},
		{"pässwörd-✓-unicode", "$argon2id$v=19$m=256,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$ecplKwJ0P58TKQyUVOvyRKchzY+1orwg"},
	} {
		ok, rehash, err := passwords.Verify(c.password, c.encoded)
		if err != nil || !ok || !rehash {
			t.Errorf("Verify(%q, %q) = %v, %v, %v; want true, true, nil", c.password, c.encoded, ok, rehash, err)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	// A cheap Default keeps this fast; every field counts.
	saved := passwords.Default
	t.Cleanup(func() { passwords.Default = saved })
	base := passwords.Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}
	passwords.Default = base

	h, err := passwords.Hash(good, base)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := passwords.Verify(good, h); err != nil || !ok || rehash {
		t.Errorf("Default: Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	for _, change := range []func(p *passwords.Params){
		func(p *passwords.Params) { p.Memory = 256 },
		func(p *passwords.Params) { p.Time = 1 },
		func(p *passwords.Params) { p.Threads = 1 },
		func(p *passwords.Params) { p.SaltLen = 32 },
		func(p *passwords.Params) { p.KeyLen = 16 },
	} {
		p := base
		change(&p)
		h, err := passwords.Hash(good, p)
		if err != nil {
			t.Fatalf("Hash(%+v): %v", p, err)
		}
		if ok, rehash, err := passwords.Verify(good, h); err != nil || !ok || !rehash {
			t.Errorf("%+v: Verify = %v, %v, %v; want true, true, nil", p, ok, rehash, err)
		}
		// Only a verified password can be rehashed: no advice on a wrong one.
		if ok, rehash, err := passwords.Verify("wrong", h); err != nil || ok || rehash {
			t.Errorf("%+v: Verify(wrong) = %v, %v, %v; want false, false, nil", p, ok, rehash, err)
		}
	}
}

func TestHashRefuses(t *testing.T) {
	_, err := passwords.Hash(strings.Repeat("a", passwords.MaxLength+1), cheap)
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.HTTPCode != http.StatusBadRequest {
		t.Errorf("Hash(too long) error = %v, want a 400", err)
	}
	if _, err := passwords.Hash(strings.Repeat("a", passwords.MaxLength), cheap); err != nil {
		t.Errorf("Hash(MaxLength bytes): %v", err)
	}
	for _, p := range []passwords.Params{
		{},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 7, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1 << 20, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 0, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 4},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 1 << 20, KeyLen: 32},
	} {
		if h, err := passwords.Hash(good, p); err == nil {
			t.Errorf("Hash(%+v) = %q, want an error", p, h)
		}
	}
}

func TestVerifyTooLongPassword(t *testing.T) {
	h, _ := passwords.Hash(good, cheap)
	if ok, rehash, err := passwords.Verify(strings.Repeat("a", 1<<20), h); ok || rehash || err != nil {
		t.Errorf("Verify(1 MiB) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
	passwords.VerifyDummy(strings.Repeat("a", 1<<20)) // returns, without hashing a megabyte
}

func TestMalformed(t *testing.T) {
	valid, err := passwords.Hash(good, cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, "$")
	salt, key := parts[4], parts[5]
	with := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	for _, encoded := range []string{
		"",
		"$",
		"argon2id",
		"$argon2id$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt,
		valid + "$",
		"x" + valid,
		strings.Replace(valid, "argon2id", "argon2i", 1),
		strings.Replace(valid, "argon2id", "ARGON2ID", 1),
		strings.Replace(valid, "v=19", "v=16", 1),
		strings.Replace(valid, "$v=19", "", 1),
		// Hostile costs: each would take minutes or gigabytes if obeyed.
		with("m=4294967295,t=1,p=1"),
		with("m=4194304,t=1,p=1"),
		with("m=65537,t=1,p=1"),
		with("m=64,t=4294967295,p=1"),
		with("m=64,t=9,p=1"),
		with("m=64,t=1,p=255"),
		with("m=64,t=1,p=9"),
		with("m=99999999999999999999,t=1,p=1"),
		with("m=64,t=1,p=256"),
		// Impossible or non-canonical numbers.
		with("m=64,t=0,p=1"),
		with("m=64,t=1,p=0"),
		with("m=7,t=1,p=1"),
		with("m=31,t=1,p=4"),
		with("m=064,t=1,p=1"),
		with("m=+64,t=1,p=1"),
		with("m=-64,t=1,p=1"),
		with("m=64 ,t=1,p=1"),
		with("m=0x40,t=1,p=1"),
		with("m=,t=1,p=1"),
		with("t=1,m=64,p=1"),
		with("m=64,t=1"),
		with("m=64,t=1,p=1,k=1"),
		with("m=64,t=1,p=1,"),
		with("M=64,t=1,p=1"),
		// Salt and key.
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "=",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10] + "_" + key[11:], // base64url, not std
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:20],                  // 15 bytes
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,                             // 4-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + strings.Repeat("A", 100),
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "!",
		valid + strings.Repeat(" ", 1000),
		strings.Repeat("$", 1<<20),
	} {
		ok, rehash, err := passwords.Verify(good, encoded)
		if !errors.Is(err, passwords.ErrMalformed) || ok || rehash {
			t.Errorf("Verify(%.80q) = %v, %v, %v; want false, false, ErrMalformed", encoded, ok, rehash, err)
		}
		if err != nil && strings.Contains(err.Error(), good) {
			t.Errorf("Verify(%.80q): the error %q contains the password", encoded, err)
		}
	}
	// The bounds themselves are accepted.
	for _, params := range []string{"m=65536,t=1,p=1", "m=64,t=8,p=8"} {
		if _, _, err := passwords.Verify(good, with(params)); err != nil {
			t.Errorf("Verify with %s: %v", params, err)
		}
	}
}

func TestVerifyDummy(t *testing.T) {
	// It must return without panicking, for any password, repeatedly; its
	// cost against Verify is shown by the benchmarks.
	for _, p := range []string{good, "\xff\xfe"} {
		passwords.VerifyDummy(p)
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		password string
		want     string // a fragment of the message; "" for accepted
	}{
		{good, ""},
		{"Tr0ub4dor&3xyz", ""},
		{"exactly12chr", ""},
		{"ünïcödé-pàss", ""},               // 12 runes, more bytes
		{"  spaces around are fine  ", ""}, // kept as typed
		{strings.Repeat("x", passwords.MaxLength), ""},
		{strings.Repeat("é", passwords.MaxLength/2), ""}, // 256 bytes, 128 runes
		{"", "too short"},
		{"short", "too short"},
		{"elevenchars", "too short"},
		{"ünïcödé-pas", "too short"}, // 11 runes, 16 bytes
		{strings.Repeat("x", passwords.MaxLength+1), "too long"},
		{strings.Repeat("é", passwords.MaxLength/2) + "x", "too long"},
		{strings.Repeat("é", 200), "too long"}, // 200 runes, 400 bytes
		{"valid prefix \xff\xfe then more", "UTF-8"},
		{strings.Repeat(" ", 20), "only spaces"},
		{" \t\n\r\u00a0\u2003\u3000 \t\n\r\u00a0\u2003", "only spaces"},
		{"   ", "only spaces"},
		{"password1234", "commonly used"},
		{"PassWord1234", "commonly used"},
		{"QWERTYUIOPASDF", "commonly used"},
		{" 123456789012 ", "commonly used"},
		{"correcthorsebatterystaple", "commonly used"},
	} {
		err := passwords.Check(c.password)
		if c.want == "" {
			if err != nil {
				t.Errorf("Check(%.40q) = %v, want nil", c.password, err)
			}
			continue
		}
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != http.StatusBadRequest {
			t.Errorf("Check(%.40q) = %v, want a 400", c.password, err)
			continue
		}
		if !strings.Contains(ae.Message, c.want) {
			t.Errorf("Check(%.40q) message %q, want it to say %q", c.password, ae.Message, c.want)
		}
		if len(strings.TrimSpace(c.password)) >= 8 && strings.Contains(ae.Message, strings.TrimSpace(c.password)) {
			t.Errorf("Check(%.40q): the message %q echoes the password", c.password, ae.Message)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := passwords.Hash(good, passwords.Default); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, err := passwords.Hash(good, passwords.Default)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		passwords.Verify("a wrong password", h)
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	passwords.VerifyDummy("") // makes the dummy hash
	for b.Loop() {
		passwords.VerifyDummy("a wrong password")
	}
}
