package transitfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const token = "s.test"

type reply struct {
	code   int
	Data   map[string]any
	Errors []string
}

func call(t *testing.T, srv *httptest.Server, method, path, tok string, body any) reply {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, &buf)
	if tok != "" {
		req.Header.Set("X-Vault-Token", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	r := reply{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAPI(t *testing.T) {
	srv := httptest.NewServer(New(token).Handler())
	defer srv.Close()

	for _, tok := range []string{"", "s.wrong"} {
		r := call(t, srv, "PUT", "/v1/transit/encrypt/k", tok, map[string]string{"plaintext": b64("x")})
		if r.code != 403 || len(r.Errors) != 1 || r.Errors[0] != "permission denied" {
			t.Errorf("token %q: %d %v", tok, r.code, r.Errors)
		}
	}
	if r := call(t, srv, "PUT", "/v1/transit/decrypt/k", token, map[string]string{"ciphertext": "vault:v1:AAAA"}); r.code != 400 || r.Errors[0] != "encryption key not found" {
		t.Errorf("decrypt before any encrypt: %d %v", r.code, r.Errors)
	}
	if r := call(t, srv, "PUT", "/v1/transit/keys/k/rotate", token, nil); r.code != 400 {
		t.Errorf("rotate missing key: %d", r.code)
	}

	enc := call(t, srv, "POST", "/v1/transit/encrypt/k", token, map[string]string{"plaintext": b64("hello"), "associated_data": b64("ad")})
	ct1, _ := enc.Data["ciphertext"].(string)
	if enc.code != 200 || !strings.HasPrefix(ct1, "vault:v1:") || enc.Data["key_version"] != 1.0 {
		t.Fatalf("encrypt: %d %v", enc.code, enc.Data)
	}
	dec := call(t, srv, "PUT", "/v1/transit/decrypt/k", token, map[string]string{"ciphertext": ct1, "associated_data": b64("ad")})
	if dec.code != 200 || dec.Data["plaintext"] != b64("hello") {
		t.Errorf("decrypt: %d %v", dec.code, dec.Data)
	}
	if r := call(t, srv, "PUT", "/v1/transit/decrypt/k", token, map[string]string{"ciphertext": ct1, "associated_data": b64("other")}); r.code != 400 || r.Errors[0] != "cipher: message authentication failed" {
		t.Errorf("decrypt with other AD: %d %v", r.code, r.Errors)
	}
	if r := call(t, srv, "PUT", "/v1/transit/decrypt/k", token, map[string]string{"ciphertext": ct1}); r.code != 400 {
		t.Errorf("decrypt without AD: %d", r.code)
	}

	rot := call(t, srv, "POST", "/v1/transit/keys/k/rotate", token, nil)
	if rot.code != 200 || rot.Data["latest_version"] != 2.0 {
		t.Fatalf("rotate: %d %v", rot.code, rot.Data)
	}
	enc2 := call(t, srv, "PUT", "/v1/transit/encrypt/k", token, map[string]string{"plaintext": b64("hi")})
	if ct, _ := enc2.Data["ciphertext"].(string); !strings.HasPrefix(ct, "vault:v2:") {
		t.Errorf("after rotate: %v", enc2.Data)
	}
	if r := call(t, srv, "PUT", "/v1/transit/decrypt/k", token, map[string]string{"ciphertext": ct1, "associated_data": b64("ad")}); r.code != 200 {
		t.Errorf("v1 after rotate: %d %v", r.code, r.Errors)
	}

	for name, body := range map[string]map[string]string{
		"no plaintext": {},
		"bad base64":   {"plaintext": "%%%"},
		"bad AD":       {"plaintext": b64("x"), "associated_data": "%%%"},
	} {
		if r := call(t, srv, "PUT", "/v1/transit/encrypt/k", token, body); r.code != 400 {
			t.Errorf("encrypt %s: %d", name, r.code)
		}
	}
	for _, ct := range []string{"", "v1:abc", "vault:abc", "vault:vX:AAAA", "vault:v9:" + strings.TrimPrefix(ct1, "vault:v1:"), "vault:v1:%%%", "vault:v1:AAAA"} {
		if r := call(t, srv, "PUT", "/v1/transit/decrypt/k", token, map[string]string{"ciphertext": ct}); r.code != 400 {
			t.Errorf("decrypt %q: %d", ct, r.code)
		}
	}
	if r := call(t, srv, "GET", "/v1/transit/encrypt/k", token, nil); r.code != 405 {
		t.Errorf("GET: %d", r.code)
	}
	for _, p := range []string{"/v1/transit/encrypt/", "/v1/transit/encrypt/a/b", "/v1/transit/hmac/k", "/v1/secret/x"} {
		if r := call(t, srv, "PUT", p, token, nil); r.code != 404 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
}
