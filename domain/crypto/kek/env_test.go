package kek

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek/transitfake"
	"github.com/skyflow-oss/skyflow/runtime/config"
)

func fromEnv(m map[string]string) (KEK, error) { return FromEnv(config.FromMap(m)) }

func TestFromEnvLocalKey(t *testing.T) {
	key := randomKey(t)
	k, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY": base64.StdEncoding.EncodeToString(key)})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := NewLocal(key)
	if k.ID() != want.ID() {
		t.Errorf("ID = %q, want %q", k.ID(), want.ID())
	}
	testAEAD(t, k)
}

func TestFromEnvLocalKeyBad(t *testing.T) {
	for _, v := range []string{"not base64!!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		_, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY": v})
		if err == nil || !strings.Contains(err.Error(), "SKYFLOW_MASTER_KEY") {
			t.Errorf("SKYFLOW_MASTER_KEY=%q: err = %v", v, err)
			continue
		}
		if strings.Contains(err.Error(), v) {
			t.Errorf("error echoes the key: %v", err)
		}
	}
}

func TestFromEnvKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	key, err := EnsureKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := NewLocal(key); k.ID() != want.ID() {
		t.Errorf("ID = %q, want %q", k.ID(), want.ID())
	}
	testAEAD(t, k)

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY_FILE": path}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 key file: err = %v", err)
	}
}

func TestFromEnvKeyFileNeverCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.key")
	_, err := fromEnv(map[string]string{"SKYFLOW_MASTER_KEY_FILE": path})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("err = %v, want does not exist", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("FromEnv created the key file")
	}
}

func TestFromEnvVaultToken(t *testing.T) {
	fake, srv := startFake(t)
	k, err := fromEnv(map[string]string{
		"VAULT_ADDR":         srv.URL,
		"VAULT_TOKEN":        fakeToken,
		"SKYFLOW_MASTER_KEY": base64.StdEncoding.EncodeToString(randomKey(t)), // Vault wins
	})
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != "transit:skyflow-kek" {
		t.Errorf("ID = %q, want transit:skyflow-kek", k.ID())
	}
	testAEAD(t, k)
	if fake.LatestVersion("skyflow-kek") != 1 {
		t.Error("the fake never saw key skyflow-kek")
	}

	k, err = fromEnv(map[string]string{"VAULT_ADDR": srv.URL, "VAULT_TOKEN": fakeToken, "VAULT_TRANSIT_KEY": "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Encrypt([]byte("x"), nil); err != nil || k.ID() != "transit:other" {
		t.Errorf("VAULT_TRANSIT_KEY=other: ID %q, err %v", k.ID(), err)
	}
}

// TestFromEnvVaultKubernetes logs in as the fake's Kubernetes auth, then
// checks a token Vault stops accepting is replaced by logging in again.
func TestFromEnvVaultKubernetes(t *testing.T) {
	jwtPath := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtPath, []byte("the-jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := serviceAccountTokenPath
	serviceAccountTokenPath = jwtPath
	t.Cleanup(func() { serviceAccountTokenPath = old })

	var logins atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("/v1/transit/", transitfake.New(fakeToken))
	mux.HandleFunc("/v1/auth/kubernetes/login", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Role, JWT string }
		json.NewDecoder(r.Body).Decode(&body)
		if body.Role != "skyflow-functions" || body.JWT != "the-jwt" || r.Header.Get("X-Vault-Token") != "" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"errors": []string{"bad login"}})
			return
		}
		token := fakeToken
		if logins.Add(1) == 1 {
			token = "s.expires-at-once"
		}
		json.NewEncoder(w).Encode(map[string]any{"auth": map[string]any{"client_token": token}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	k, err := fromEnv(map[string]string{"VAULT_ADDR": srv.URL, "VAULT_K8S_ROLE": "skyflow-functions"})
	if err != nil {
		t.Fatal(err)
	}
	if logins.Load() != 1 {
		t.Fatalf("logins = %d, want 1", logins.Load())
	}
	testAEAD(t, k)
	if logins.Load() != 2 {
		t.Errorf("logins = %d, want 2 (one re-login after 403)", logins.Load())
	}

	_, err = fromEnv(map[string]string{"VAULT_ADDR": srv.URL, "VAULT_K8S_ROLE": "wrong-role"})
	if err == nil || !strings.Contains(err.Error(), `role "wrong-role"`) {
		t.Errorf("wrong role: err = %v", err)
	}
}

func TestFromEnvMissing(t *testing.T) {
	_, err := fromEnv(map[string]string{"VAULT_K8S_ROLE": "r"}) // a role alone selects nothing
	if err == nil {
		t.Fatal("no error")
	}
	for _, v := range []string{"VAULT_ADDR", "VAULT_TOKEN", "VAULT_K8S_ROLE", "SKYFLOW_MASTER_KEY ", "SKYFLOW_MASTER_KEY_FILE"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error %q does not name %s", err, v)
		}
	}

	_, err = fromEnv(map[string]string{"VAULT_ADDR": "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "neither VAULT_TOKEN nor VAULT_K8S_ROLE") {
		t.Errorf("VAULT_ADDR alone: err = %v", err)
	}
	_, err = fromEnv(map[string]string{"SKYFLOW_MASTER_KEY": "x", "SKYFLOW_MASTER_KEY_FILE": "y"})
	if err == nil || !strings.Contains(err.Error(), "only one") {
		t.Errorf("both local settings: err = %v", err)
	}
}
