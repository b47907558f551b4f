package kek

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// transitMount is where the Transit secrets engine is mounted.
const transitMount = "transit"

// keyNameRE is Vault's rule for key names (framework.GenericNameRegex).
var keyNameRE = regexp.MustCompile(`^\w(?:[\w\-.@]*\w)?$`)

type transit struct {
	client *vaultapi.Client
	aead   tink.AEAD
	key    string

	// login, when set, fetches a fresh token after Vault refuses the
	// current one, so an expired Kubernetes-auth token heals itself.
	login   func() error
	loginMu sync.Mutex
}

// NewTransit returns a KEK held by HashiCorp Vault's Transit engine (mounted
// at transit/) under keyName. The key never leaves Vault: every Encrypt and
// Decrypt is a request to transit/encrypt/<key> or transit/decrypt/<key>.
// Associated data is sent as Transit's associated_data, which Vault binds
// into AES-GCM keys' ciphertexts. Vault creates the key on first encrypt if
// the token's policy allows it.
func NewTransit(client *vaultapi.Client, keyName string) (KEK, error) {
	return newTransit(client, keyName, nil)
}

func newTransit(client *vaultapi.Client, keyName string, login func() error) (*transit, error) {
	if client == nil {
		return nil, errors.New("kek: transit: nil Vault client")
	}
	if !keyNameRE.MatchString(keyName) {
		return nil, fmt.Errorf("kek: transit key name %q is not a valid Vault key name (letters, digits, _ - . @)", keyName)
	}
	a, err := hcvault.NewAEAD("/"+transitMount+"/keys/"+keyName, client.Logical())
	if err != nil {
		return nil, fmt.Errorf("kek: transit: %w", err)
	}
	return &transit{client: client, aead: a, key: keyName, login: login}, nil
}

func (t *transit) ID() string { return "transit:" + t.key }

func (t *transit) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return t.do("encrypt", func() ([]byte, error) { return t.aead.Encrypt(plaintext, associatedData) })
}

func (t *transit) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	return t.do("decrypt", func() ([]byte, error) { return t.aead.Decrypt(ciphertext, associatedData) })
}

// do runs op, logging in again once if Vault refuses the token.
func (t *transit) do(op string, f func() ([]byte, error)) ([]byte, error) {
	token := t.client.Token()
	out, err := f()
	if err != nil && t.login != nil && statusCode(err) == http.StatusForbidden {
		if lerr := t.relogin(token); lerr != nil {
			return nil, t.error(op, errors.Join(err, lerr))
		}
		out, err = f()
	}
	if err != nil {
		return nil, t.error(op, err)
	}
	return out, nil
}

// relogin logs in unless another goroutine already replaced stale.
func (t *transit) relogin(stale string) error {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	if t.client.Token() != stale {
		return nil
	}
	return t.login()
}

func statusCode(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// error condenses Vault's multi-line API errors to one line naming the
// operation and key. Vault's errors never echo request bodies, so no
// plaintext can appear here.
func (t *transit) error(op string, err error) error {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		return &transitError{fmt.Sprintf("kek: vault transit %s with key %q: %v", op, t.key, err), err}
	}
	msg := fmt.Sprintf("kek: vault transit %s with key %q: HTTP %d: %s",
		op, t.key, re.StatusCode, strings.Join(re.Errors, "; "))
	if re.StatusCode == http.StatusForbidden {
		msg += fmt.Sprintf(" (the Vault token is invalid or expired, or its policy lacks \"update\" on %s/%s/%s)",
			transitMount, op, t.key)
	}
	return &transitError{msg, err}
}

type transitError struct {
	msg string
	err error
}

func (e *transitError) Error() string { return e.msg }
func (e *transitError) Unwrap() error { return e.err }
