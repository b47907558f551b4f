package passwords

import (
	"errors"
	"testing"
)

// FuzzVerify: Verify never panics, and either refuses an encoding with
// ErrMalformed or accepts one within the bounds.
func FuzzVerify(f *testing.F) {
	f.Add("pw", "$argon2id$v=19$m=64,t=2,p=1$c2t5Zmxvdy10ZXN0LXNhbHQ$l1mHXbJ2O0Nr/DdV3YcoZFWtN82kbZaeRWktCLyIs3o")
	f.Add("pw", "$argon2id$v=19$m=256,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$ecplKwJ0P58TKQyUVOvyRKchzY+1orwg")
	f.Add("", "$argon2id$v=19$m=4294967295,t=4294967295,p=255$MDEyMzQ1Njc4OWFiY2RlZg$ecplKwJ0P58TKQyUVOvyRKchzY+1orwg")
	f.Add("", "$argon2id$v=19$m=18446744073709551616,t=1,p=1$$")
	f.Add("x", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1,q=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("x", "$$$$$$")
	f.Add("x", "")
	f.Fuzz(func(t *testing.T, password, encoded string) {
		p, _, _, err := decode(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode(%q) error %v does not wrap ErrMalformed", encoded, err)
			}
		} else if p.validate() != nil {
			t.Fatalf("decode(%q) accepted out-of-bounds %+v", encoded, p)
		}
		if err == nil && uint64(p.Memory)*uint64(p.Time) > 4096 {
			return // legitimate but slow: the fuzzer's time is better spent on parsing
		}
		ok, rehash, verr := Verify(password, encoded)
		if (verr != nil) != (err != nil) || (verr != nil && (ok || rehash)) || (rehash && !ok) {
			t.Fatalf("Verify(%q, %q) = %v, %v, %v", password, encoded, ok, rehash, verr)
		}
	})
}

func TestDummyHash(t *testing.T) {
	h := dummyHash()
	p, _, _, err := decode(h)
	if err != nil || p != Default {
		t.Fatalf("dummy hash %q: params %+v, %v; want Default", h, p, err)
	}
	if dummyHash() != h {
		t.Error("the dummy hash is remade while Default is unchanged")
	}
	if ok, _, _ := Verify("", h); ok {
		t.Error("the empty password matches the dummy hash")
	}
}
