package tokens

import "testing"

// byteSeq yields 0, 1, …, 255 once each.
type byteSeq struct{ i int }

func (b *byteSeq) next() (byte, error) {
	if b.i > 255 {
		return 0, errExhausted
	}
	b.i++
	return byte(b.i - 1), nil
}

var errExhausted = errorString("exhausted")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestUniformNoBias feeds every byte value once: with rejection sampling each
// result must come out exactly equally often, i.e. there is no modulo bias.
func TestUniformNoBias(t *testing.T) {
	for _, n := range []byte{10, 26} {
		src := &byteSeq{}
		counts := make([]int, n)
		for {
			v, err := uniform(src, n)
			if err != nil {
				break
			}
			counts[v]++
		}
		want := 256 / int(n)
		for v, c := range counts {
			if c != want {
				t.Errorf("n=%d: value %d drawn %d times, want %d", n, v, c, want)
			}
		}
	}
}

// The keystream is HMAC-SHA256(seed, label ‖ 0 ‖ counter) blocks; check it
// continues across block boundaries without repeating.
func TestKeystreamBlocks(t *testing.T) {
	ks := newKeystream(make([]byte, 32), DeterministicFPT)
	var a, b [32]byte
	for i := range a {
		a[i], _ = ks.next()
	}
	for i := range b {
		b[i], _ = ks.next()
	}
	if a == b {
		t.Fatal("keystream repeats its first block")
	}
}
