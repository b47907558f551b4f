// Package transitfake is a FAKE of HashiCorp Vault's Transit secrets engine,
// for tests only: no Vault server can run where these tests run. It serves,
// over real HTTP, exactly the requests package kek sends, shaped as Vault
// answers them:
//
//	PUT|POST /v1/transit/encrypt/<name>      {"plaintext":b64,"associated_data":b64}
//	  → {"data":{"ciphertext":"vault:v1:…","key_version":1}}
//	PUT|POST /v1/transit/decrypt/<name>      {"ciphertext":"vault:vN:…","associated_data":b64}
//	  → {"data":{"plaintext":b64}}
//	PUT|POST /v1/transit/keys/<name>/rotate
//	PUT|POST /v1/transit/keys/<name>/config  {"deletion_allowed":true}
//	DELETE   /v1/transit/keys/<name>          (refused unless deletion is allowed)
//
// Requests need the X-Vault-Token given to [New] (else 403, "permission
// denied"). Keys are AES-256-GCM, created on first encrypt as Vault's upsert
// does; rotation adds a version, and every older version still decrypts.
// Errors are 400 {"errors":[…]} with Vault's messages. Key material lives
// only in memory.
package transitfake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// nameRE is Vault's framework.GenericNameRegex.
var nameRE = regexp.MustCompile(`^\w(?:[\w\-.@]*\w)?$`)

// Server is a fake Transit engine mounted at transit/. It is an
// [http.Handler] and safe for concurrent use.
type Server struct {
	token string

	mu        sync.Mutex
	keys      map[string][]cipher.AEAD // name → versions; version n at index n-1
	deletable map[string]bool
}

// New returns a Server that accepts only token.
func New(token string) *Server {
	return &Server{token: token, keys: map[string][]cipher.AEAD{}}
}

// Handler returns s, for symmetry with servers that are not handlers.
func (s *Server) Handler() http.Handler { return s }

// LatestVersion is the newest version of key name, 0 if it does not exist.
func (s *Server) LatestVersion(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys[name])
}

// requestErr is a failure answered with Vault's error body.
type requestErr struct {
	code int
	msg  string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get("X-Vault-Token")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
		writeErr(w, &requestErr{http.StatusForbidden, "permission denied"})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/transit/")
	if !ok {
		writeErr(w, &requestErr{http.StatusNotFound, "no handler for route \"" + r.URL.Path + "\". route entry not found."})
		return
	}
	if r.Method == http.MethodDelete {
		name, ok := strings.CutPrefix(rest, "keys/")
		if !ok || !nameRE.MatchString(name) {
			writeErr(w, &requestErr{http.StatusNotFound, "unsupported path"})
			return
		}
		if err := s.delete(name); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		writeErr(w, &requestErr{http.StatusMethodNotAllowed, "unsupported operation"})
		return
	}
	var body struct {
		Plaintext       *string `json:"plaintext"`
		Ciphertext      string  `json:"ciphertext"`
		AssociatedData  string  `json:"associated_data"`
		DeletionAllowed *bool   `json:"deletion_allowed"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 32<<20)).Decode(&body); err != nil && err != io.EOF {
		writeErr(w, &requestErr{http.StatusBadRequest, "failed to parse JSON input"})
		return
	}
	var (
		data map[string]any
		err  *requestErr
	)
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "encrypt" && nameRE.MatchString(parts[1]):
		data, err = s.encrypt(parts[1], body.Plaintext, body.AssociatedData)
	case len(parts) == 2 && parts[0] == "decrypt" && nameRE.MatchString(parts[1]):
		data, err = s.decrypt(parts[1], body.Ciphertext, body.AssociatedData)
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "rotate" && nameRE.MatchString(parts[1]):
		data, err = s.rotate(parts[1])
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "config" && nameRE.MatchString(parts[1]):
		data, err = s.config(parts[1], body.DeletionAllowed)
	default:
		err = &requestErr{http.StatusNotFound, "unsupported path"}
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"request_id":     uuid.NewString(),
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           data,
		"wrap_info":      nil,
		"warnings":       nil,
		"auth":           nil,
	})
}

func (s *Server) encrypt(name string, plaintext *string, ad string) (map[string]any, *requestErr) {
	if plaintext == nil {
		return nil, &requestErr{http.StatusBadRequest, "missing plaintext to encrypt"}
	}
	pt, err := base64.StdEncoding.DecodeString(*plaintext)
	if err != nil {
		return nil, &requestErr{http.StatusBadRequest, "failed to base64-decode plaintext"}
	}
	adBytes, rerr := decodeAD(ad)
	if rerr != nil {
		return nil, rerr
	}
	s.mu.Lock()
	if len(s.keys[name]) == 0 {
		s.keys[name] = append(s.keys[name], newKey())
	}
	version := len(s.keys[name])
	gcm := s.keys[name][version-1]
	s.mu.Unlock()

	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	ct := gcm.Seal(nonce, nonce, pt, adBytes)
	return map[string]any{
		"ciphertext":  fmt.Sprintf("vault:v%d:%s", version, base64.StdEncoding.EncodeToString(ct)),
		"key_version": version,
	}, nil
}

func (s *Server) decrypt(name, ciphertext, ad string) (map[string]any, *requestErr) {
	if ciphertext == "" {
		return nil, &requestErr{http.StatusBadRequest, "missing ciphertext to decrypt"}
	}
	adBytes, rerr := decodeAD(ad)
	if rerr != nil {
		return nil, rerr
	}
	s.mu.Lock()
	versions := s.keys[name]
	s.mu.Unlock()
	if len(versions) == 0 {
		return nil, &requestErr{http.StatusBadRequest, "encryption key not found"}
	}
	rest, ok := strings.CutPrefix(ciphertext, "vault:")
	if !ok {
		return nil, &requestErr{http.StatusBadRequest, "invalid ciphertext: no prefix"}
	}
	vstr, b64, ok := strings.Cut(rest, ":")
	if !ok || !strings.HasPrefix(vstr, "v") {
		return nil, &requestErr{http.StatusBadRequest, "invalid ciphertext: wrong number of fields"}
	}
	version, err := strconv.Atoi(vstr[1:])
	if err != nil {
		return nil, &requestErr{http.StatusBadRequest, "invalid ciphertext: version number could not be decoded"}
	}
	if version < 1 || version > len(versions) {
		return nil, &requestErr{http.StatusBadRequest, "invalid key version"}
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, &requestErr{http.StatusBadRequest, "invalid ciphertext: could not decode base64"}
	}
	gcm := versions[version-1]
	if len(raw) < gcm.NonceSize() {
		return nil, &requestErr{http.StatusBadRequest, "invalid ciphertext: unable to decrypt"}
	}
	pt, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], adBytes)
	if err != nil {
		return nil, &requestErr{http.StatusBadRequest, "cipher: message authentication failed"}
	}
	return map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}, nil
}

func (s *Server) rotate(name string) (map[string]any, *requestErr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys[name]) == 0 {
		return nil, &requestErr{http.StatusBadRequest, "key not found"}
	}
	s.keys[name] = append(s.keys[name], newKey())
	return map[string]any{
		"name":                   name,
		"type":                   "aes256-gcm96",
		"latest_version":         len(s.keys[name]),
		"min_decryption_version": 1,
		"supports_encryption":    true,
		"supports_decryption":    true,
	}, nil
}

func (s *Server) config(name string, deletionAllowed *bool) (map[string]any, *requestErr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys[name]) == 0 {
		return nil, &requestErr{http.StatusBadRequest, "no existing key named " + name + " could be found"}
	}
	if deletionAllowed != nil {
		if s.deletable == nil {
			s.deletable = map[string]bool{}
		}
		s.deletable[name] = *deletionAllowed
	}
	return map[string]any{"name": name, "deletion_allowed": s.deletable[name]}, nil
}

func (s *Server) delete(name string) *requestErr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys[name]) == 0 {
		return nil // Vault answers 204 for a missing key too
	}
	if !s.deletable[name] {
		return &requestErr{http.StatusBadRequest, "deletion is not allowed for this key"}
	}
	delete(s.keys, name)
	delete(s.deletable, name)
	return nil
}

func decodeAD(ad string) ([]byte, *requestErr) {
	b, err := base64.StdEncoding.DecodeString(ad)
	if err != nil {
		return nil, &requestErr{http.StatusBadRequest, "failed to base64-decode associated_data"}
	}
	return b, nil
}

func newKey() cipher.AEAD {
	k := make([]byte, 32)
	rand.Read(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		panic(err) // unreachable: the key is 32 bytes
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return gcm
}

func writeErr(w http.ResponseWriter, e *requestErr) {
	writeJSON(w, e.code, map[string]any{"errors": []string{e.msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
