package kek

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/skyflow-oss/skyflow/runtime/config"
)

// DefaultTransitKey is the Transit key used when VAULT_TRANSIT_KEY is unset.
const DefaultTransitKey = "skyflow-kek"

// serviceAccountTokenPath is where Kubernetes mounts the pod's service
// account JWT; a variable so tests can point it elsewhere.
var serviceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// errNoKEK lists every way to configure a KEK, since it is read by someone
// who has configured none.
var errNoKEK = errors.New("kek: no key-encryption key configured: set VAULT_ADDR " +
	"(with VAULT_TOKEN, or VAULT_K8S_ROLE for Kubernetes auth; VAULT_TRANSIT_KEY defaults to " +
	DefaultTransitKey + ") to use HashiCorp Vault Transit, or for a local master key set " +
	"SKYFLOW_MASTER_KEY (base64 of 32 random bytes, e.g. `head -c 32 /dev/urandom | base64`) or " +
	"SKYFLOW_MASTER_KEY_FILE (path of a file holding 32 raw bytes, mode 0600)")

// FromEnv returns the KEK the environment configures:
//
//   - VAULT_ADDR set: Vault Transit with key VAULT_TRANSIT_KEY (default
//     "skyflow-kek"), authenticated by VAULT_TOKEN or, if that is unset, by
//     Kubernetes auth as role VAULT_K8S_ROLE with the pod's service account
//     token. Other VAULT_* settings such as VAULT_CACERT are read from the
//     process environment by the Vault client.
//   - otherwise SKYFLOW_MASTER_KEY (base64 of 32 bytes) or
//     SKYFLOW_MASTER_KEY_FILE (a file checked as by [EnsureKeyFile], but
//     never created here: a missing key must not be silently replaced).
//
// With none of these set the error names every variable to set.
func FromEnv(env *config.Env) (KEK, error) {
	if addr := env.String("VAULT_ADDR", ""); addr != "" {
		return transitFromEnv(env, addr)
	}
	b64 := env.String("SKYFLOW_MASTER_KEY", "")
	file := env.String("SKYFLOW_MASTER_KEY_FILE", "")
	switch {
	case b64 != "" && file != "":
		return nil, errors.New("kek: both SKYFLOW_MASTER_KEY and SKYFLOW_MASTER_KEY_FILE are set; set only one")
	case b64 != "":
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			// The value is never echoed: it is key material.
			return nil, errors.New("kek: SKYFLOW_MASTER_KEY is not valid standard base64; " +
				"it must be the base64 of 32 random bytes, e.g. `head -c 32 /dev/urandom | base64`")
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("kek: SKYFLOW_MASTER_KEY decodes to %d bytes; it must decode to exactly %d", len(key), KeySize)
		}
		return NewLocal(key)
	case file != "":
		current, err := localFromFile(file, "SKYFLOW_MASTER_KEY_FILE")
		if err != nil {
			return nil, err
		}
		return withPrevious(current, env.String("SKYFLOW_PREVIOUS_MASTER_KEY_FILES", ""))
	}
	return nil, errNoKEK
}

func localFromFile(file, variable string) (KEK, error) {
	key, err := readKeyFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("kek: %s %s does not exist; restore it, or create a new key "+
			"(only if nothing was encrypted with the old one) with: "+
			"(umask 077; head -c 32 /dev/urandom > %s)", variable, file, file)
	}
	if err != nil {
		return nil, err
	}
	return NewLocal(key)
}

// withPrevious adds the master keys of SKYFLOW_PREVIOUS_MASTER_KEY_FILES
// (comma-separated), during a KEK rotation, to current.
func withPrevious(current KEK, files string) (KEK, error) {
	var previous []KEK
	for _, f := range strings.Split(files, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := localFromFile(f, "SKYFLOW_PREVIOUS_MASTER_KEY_FILES:")
		if err != nil {
			return nil, err
		}
		previous = append(previous, k)
	}
	if len(previous) == 0 {
		return current, nil
	}
	return NewRing(current, previous...), nil
}

func transitFromEnv(env *config.Env, addr string) (KEK, error) {
	client, keyName, login, err := transitClient(env, addr)
	if err != nil {
		return nil, err
	}
	return newTransit(client, keyName, login)
}

// VaultKeysFromEnv returns the store of per-vault keys (crypto-shredding)
// the environment configures: with VAULT_ADDR, Transit keys named
// <VAULT_TRANSIT_KEY>-vault-<id>; otherwise key files in
// SKYFLOW_VAULT_KEYS_DIR. With neither it returns nil: vaults are then
// wrapped by the KEK alone, and deleting one cannot shred its backups.
func VaultKeysFromEnv(env *config.Env) (VaultKeys, error) {
	if addr := env.String("VAULT_ADDR", ""); addr != "" {
		client, keyName, login, err := transitClient(env, addr)
		if err != nil {
			return nil, err
		}
		return &transitVaultKeys{client: client, base: keyName, login: login}, nil
	}
	if dir := env.String("SKYFLOW_VAULT_KEYS_DIR", ""); dir != "" {
		return NewDirVaultKeys(dir)
	}
	return nil, nil
}

// transitClient is a Vault client logged in as the environment says, the
// Transit key's name, and how to log in again (nil with a fixed token).
func transitClient(env *config.Env, addr string) (*vaultapi.Client, string, func() error, error) {
	keyName := env.String("VAULT_TRANSIT_KEY", DefaultTransitKey)
	token := env.String("VAULT_TOKEN", "")
	role := env.String("VAULT_K8S_ROLE", "")
	if token == "" && role == "" {
		return nil, "", nil, errors.New("kek: VAULT_ADDR is set but neither VAULT_TOKEN nor VAULT_K8S_ROLE is; " +
			"set VAULT_TOKEN, or VAULT_K8S_ROLE to log in with the pod's Kubernetes service account")
	}
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, "", nil, fmt.Errorf("kek: vault client configuration: %w", cfg.Error)
	}
	cfg.Address = addr
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("kek: VAULT_ADDR: %w", err)
	}
	if token != "" {
		client.SetToken(token)
		return client, keyName, nil, nil
	}
	client.ClearToken() // NewClient may have read VAULT_TOKEN from the process
	login := kubernetesLogin(client, role)
	if err := login(); err != nil {
		return nil, "", nil, err
	}
	return client, keyName, login, nil
}

// kubernetesLogin returns a func that exchanges the pod's service account
// JWT for a Vault token and sets it on client. It logs in through a clone
// without a token, so a stale token is neither sent nor cleared under
// concurrent users of client.
func kubernetesLogin(client *vaultapi.Client, role string) func() error {
	return func() error {
		jwt, err := os.ReadFile(serviceAccountTokenPath)
		if err != nil {
			return fmt.Errorf("kek: vault kubernetes auth: read service account token: %w", err)
		}
		lc, err := client.CloneWithHeaders()
		if err != nil {
			return fmt.Errorf("kek: vault kubernetes auth: %w", err)
		}
		lc.ClearToken()
		secret, err := lc.Logical().Write("auth/kubernetes/login", map[string]any{
			"role": role,
			"jwt":  strings.TrimSpace(string(jwt)),
		})
		if err != nil {
			return fmt.Errorf("kek: vault kubernetes auth as role %q: %w", role, err)
		}
		if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
			return fmt.Errorf("kek: vault kubernetes auth as role %q: no client token in response", role)
		}
		client.SetToken(secret.Auth.ClientToken)
		return nil
	}
}
