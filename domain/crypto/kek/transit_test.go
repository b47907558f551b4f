package kek

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek/transitfake"
)

const fakeToken = "s.fake-root-token"

// startFake serves a fake Transit engine over real HTTP.
func startFake(t *testing.T) (*transitfake.Server, *httptest.Server) {
	t.Helper()
	fake := transitfake.New(fakeToken)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

func vaultClient(t *testing.T, addr, token string) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func TestTransitRoundTrip(t *testing.T) {
	_, srv := startFake(t)
	k, err := NewTransit(vaultClient(t, srv.URL, fakeToken), "skyflow-kek")
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != "transit:skyflow-kek" {
		t.Errorf("ID = %q", k.ID())
	}
	testAEAD(t, k)
	ct, _ := k.Encrypt([]byte("x"), nil)
	if !strings.HasPrefix(string(ct), "vault:v1:") {
		t.Errorf("ciphertext %q lacks vault:v1:", ct)
	}
}

func TestTransitADMismatch(t *testing.T) {
	_, srv := startFake(t)
	k, _ := NewTransit(vaultClient(t, srv.URL, fakeToken), "k")
	ct, err := k.Encrypt([]byte("the plaintext"), []byte("vault a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Decrypt(ct, []byte("vault b"))
	if err == nil {
		t.Fatal("decrypted with other associated data")
	}
	for _, w := range []string{`decrypt with key "k"`, "HTTP 400", "message authentication failed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "the plaintext") {
		t.Error("error echoes plaintext")
	}
}

func TestTransitWrongToken(t *testing.T) {
	_, srv := startFake(t)
	k, _ := NewTransit(vaultClient(t, srv.URL, "s.wrong"), "k")
	_, err := k.Encrypt([]byte("the plaintext"), nil)
	if err == nil {
		t.Fatal("encrypted with a wrong token")
	}
	for _, w := range []string{`encrypt with key "k"`, "HTTP 403", "permission denied", "token is invalid or expired", "transit/encrypt/k"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "the plaintext") || strings.Contains(err.Error(), "s.wrong") {
		t.Error("error echoes plaintext or token")
	}
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("error does not unwrap to a 403 *api.ResponseError: %#v", err)
	}
}

func TestTransitUnknownKey(t *testing.T) {
	_, srv := startFake(t)
	c := vaultClient(t, srv.URL, fakeToken)
	a, _ := NewTransit(c, "a")
	ct, _ := a.Encrypt([]byte("x"), nil)
	b, _ := NewTransit(c, "b")
	if _, err := b.Decrypt(ct, nil); err == nil || !strings.Contains(err.Error(), "encryption key not found") {
		t.Errorf("decrypt under a key never created: err = %v", err)
	}
}

func TestTransitRotation(t *testing.T) {
	fake, srv := startFake(t)
	c := vaultClient(t, srv.URL, fakeToken)
	k, _ := NewTransit(c, "k")
	old, err := k.Encrypt([]byte("old"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/k/rotate", nil); err != nil {
		t.Fatal(err)
	}
	if fake.LatestVersion("k") != 2 {
		t.Fatalf("version after rotate = %d", fake.LatestVersion("k"))
	}
	newer, _ := k.Encrypt([]byte("new"), []byte("ad"))
	if !strings.HasPrefix(string(newer), "vault:v2:") {
		t.Errorf("after rotate, ciphertext %q lacks vault:v2:", newer)
	}
	if pt, err := k.Decrypt(old, []byte("ad")); err != nil || string(pt) != "old" {
		t.Errorf("v1 ciphertext after rotate: %q, %v", pt, err)
	}
}

func TestNewTransitRefuses(t *testing.T) {
	c := vaultClient(t, "http://127.0.0.1:1", fakeToken)
	for _, name := range []string{"", "a/b", "../x", "k?x", "-k"} {
		if _, err := NewTransit(c, name); err == nil {
			t.Errorf("NewTransit(%q) succeeded", name)
		}
	}
	if _, err := NewTransit(nil, "k"); err == nil {
		t.Error("NewTransit(nil client) succeeded")
	}
}
