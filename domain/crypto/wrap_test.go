package crypto

import (
	"bytes"
	"crypto/rand"
	"net/http/httptest"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/secretdata"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek/transitfake"
)

func testKEK(t testing.TB) kek.KEK {
	t.Helper()
	key := make([]byte, kek.KeySize)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrapUnwrap(t *testing.T) {
	kk := testKEK(t)
	k := newTestKeys(t)
	ct, _ := k.Seal([]byte("secret"), cell)
	idx := must(k.BlindIndex("persons", "ssn", []byte("123")))

	w, err := k.Wrap(kk, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if w.KEKID != kk.ID() {
		t.Errorf("KEKID = %q, want %q", w.KEKID, kk.ID())
	}
	u, err := Unwrap(kk, "v1", w)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := u.Open(ct, cell); err != nil || string(pt) != "secret" {
		t.Errorf("unwrapped Open = %q, %v", pt, err)
	}
	if got := must(u.BlindIndex("persons", "ssn", []byte("123"))); !bytes.Equal(got, idx) {
		t.Error("unwrapped BlindIndex differs")
	}
}

func TestUnwrapRefuses(t *testing.T) {
	kk := testKEK(t)
	w, err := newTestKeys(t).Wrap(kk, "vault-a")
	if err != nil {
		t.Fatal(err)
	}
	other := testKEK(t)
	forged := w
	forged.KEKID = other.ID() // get past the ID check: the crypto must refuse
	swapped := w
	swapped.Values, swapped.Index = w.Index, w.Values
	damaged := w
	damaged.Values = bytes.Clone(w.Values)
	damaged.Values[len(damaged.Values)-1] ^= 1

	for name, tc := range map[string]struct {
		kek     kek.KEK
		vaultID string
		w       Wrapped
		want    string
	}{
		"other KEK":                {other, "vault-a", w, "wrapped by KEK"},
		"other KEK, forged KEKID":  {other, "vault-a", forged, "unwrap values keyset"},
		"other vault":              {kk, "vault-b", w, "unwrap values keyset of vault vault-b"},
		"vault id prefix":          {kk, "vault-", w, "unwrap values keyset"},
		"values and index swapped": {kk, "vault-a", swapped, "unwrap values keyset"},
		"damaged":                  {kk, "vault-a", damaged, "unwrap values keyset"},
		"empty":                    {kk, "vault-a", Wrapped{KEKID: kk.ID()}, "unwrap values keyset"},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := Unwrap(tc.kek, tc.vaultID, tc.w)
			if err == nil {
				t.Fatalf("Unwrap succeeded: %v", k != nil)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestWrappedHidesKeyMaterial checks the stored form is encrypted: neither
// any raw key nor the cleartext keyset serializations appear in it.
func TestWrappedHidesKeyMaterial(t *testing.T) {
	k := newTestKeys(t)
	if err := k.Rotate(); err != nil { // two values keys
		t.Fatal(err)
	}
	w, err := k.Wrap(testKEK(t), "v1")
	if err != nil {
		t.Fatal(err)
	}
	stored := append(bytes.Clone(w.Values), w.Index...)
	for _, h := range []*keyset.Handle{k.values, k.index} {
		var secrets [][]byte
		for i := range h.Len() {
			e, err := h.Entry(i)
			if err != nil {
				t.Fatal(err)
			}
			kb, ok := e.Key().(interface{ KeyBytes() secretdata.Bytes })
			if !ok {
				t.Fatalf("key %T has no KeyBytes", e.Key())
			}
			secrets = append(secrets, kb.KeyBytes().Data(insecuresecretdataaccess.Token{}))
		}
		for _, kd := range insecurecleartextkeyset.KeysetMaterial(h).GetKey() {
			secrets = append(secrets, kd.GetKeyData().GetValue())
		}
		var bin, js bytes.Buffer
		if err := insecurecleartextkeyset.Write(h, keyset.NewBinaryWriter(&bin)); err != nil {
			t.Fatal(err)
		}
		if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&js)); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, bin.Bytes(), js.Bytes())
		for i, s := range secrets {
			if len(s) < 16 {
				t.Fatalf("secret %d is only %d bytes", i, len(s))
			}
			if bytes.Contains(stored, s) {
				t.Errorf("wrapped keysets contain secret %d in the clear", i)
			}
		}
	}
}

// TestWrapWithTransit wraps through the Transit backend over real HTTP (a
// fake Vault), including after the Transit key rotates.
func TestWrapWithTransit(t *testing.T) {
	srv := httptest.NewServer(transitfake.New("s.t"))
	defer srv.Close()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = srv.URL
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("s.t")
	kk, err := kek.NewTransit(c, "skyflow-kek")
	if err != nil {
		t.Fatal(err)
	}
	k := newTestKeys(t)
	ct, _ := k.Seal([]byte("secret"), cell)
	w, err := k.Wrap(kk, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/skyflow-kek/rotate", nil); err != nil {
		t.Fatal(err)
	}
	u, err := Unwrap(kk, "v1", w)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := u.Open(ct, cell); err != nil || string(pt) != "secret" {
		t.Errorf("Open = %q, %v", pt, err)
	}
	if _, err := Unwrap(kk, "v2", w); err == nil {
		t.Error("unwrapped vault v1's keys as v2")
	}
}
