package crypto

import (
	"bytes"
	"testing"
)

func TestBlindIndex(t *testing.T) {
	k := newTestKeys(t)
	v := []byte("alice@example.com")
	a, err := k.BlindIndex("persons", "email", v)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != PRFSize {
		t.Fatalf("len = %d, want %d", len(a), PRFSize)
	}
	if b, _ := k.BlindIndex("persons", "email", v); !bytes.Equal(a, b) {
		t.Error("BlindIndex is not deterministic")
	}
	differ := map[string][]byte{
		"value":    must(k.BlindIndex("persons", "email", []byte("bob@example.com"))),
		"column":   must(k.BlindIndex("persons", "email2", v)),
		"table":    must(k.BlindIndex("people", "email", v)),
		"boundary": must(k.BlindIndex("persons", "emai", append([]byte("l"), v...))),
		"keys":     must(newTestKeys(t).BlindIndex("persons", "email", v)),
	}
	for name, d := range differ {
		if bytes.Equal(a, d) {
			t.Errorf("other %s gives the same blind index", name)
		}
	}
}

func TestTokenSeed(t *testing.T) {
	k := newTestKeys(t)
	v := []byte("4111111111111111")
	a, err := k.TokenSeed("cards", v, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != PRFSize {
		t.Fatalf("len = %d, want %d", len(a), PRFSize)
	}
	if b, _ := k.TokenSeed("cards", v, 0); !bytes.Equal(a, b) {
		t.Error("TokenSeed is not deterministic")
	}
	seen := map[string]string{string(a): "attempt 0"}
	for name, d := range map[string][]byte{
		"attempt 1": must(k.TokenSeed("cards", v, 1)),
		"attempt 2": must(k.TokenSeed("cards", v, 2)),
		"group":     must(k.TokenSeed("cards2", v, 0)),
		"value":     must(k.TokenSeed("cards", []byte("4111111111111112"), 0)),
		"keys":      must(newTestKeys(t).TokenSeed("cards", v, 0)),
	} {
		if prev, dup := seen[string(d)]; dup {
			t.Errorf("%s gives the same seed as %s", name, prev)
		}
		seen[string(d)] = name
	}
	if _, err := k.TokenSeed("cards", v, -1); err == nil {
		t.Error("negative attempt: want error")
	}
}

// TestIndexAndSeedSeparated: the same names and value never give the same
// output from BlindIndex and TokenSeed.
func TestIndexAndSeedSeparated(t *testing.T) {
	k := newTestKeys(t)
	v := []byte("x")
	idx := must(k.BlindIndex("g", "", v))
	for attempt := range 3 {
		if bytes.Equal(idx, must(k.TokenSeed("g", v, attempt))) {
			t.Errorf("BlindIndex equals TokenSeed attempt %d", attempt)
		}
	}
	if bytes.Equal(must(k.BlindIndex("t", "c", v)), must(k.TokenSeed("c", v, 0))) {
		t.Error("BlindIndex equals TokenSeed")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
