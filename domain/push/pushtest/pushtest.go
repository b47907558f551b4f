// Package pushtest is a fake Web Push service for tests: it plays the part
// of the browser vendor's push service (Firebase Cloud Messaging, Mozilla
// autopush, Apple's) and of the browser behind it, which a test cannot
// reach. It is an https server on loopback that hands out subscriptions
// as a browser's PushManager.subscribe() would (an endpoint, a P-256 key
// pair and an authentication secret), checks each push's VAPID
// Authorization header (RFC 8292: the JWT's ES256 signature against the
// key in k=, aud, exp, sub) and decrypts its payload as the browser would
// (RFC 8291 with RFC 8188 aes128gcm), with crypto/ecdh, crypto/hkdf and
// AES-GCM from the standard library: it shares no code with the sender.
//
// Only tests import it.
package pushtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service is a running fake push service.
type Service struct {
	// URL is its origin, https://127.0.0.1:<port>.
	URL string
	// CAFile is its certificate (PEM): what notify-push must trust
	// (SKYFLOW_PUSH_CA_FILE).
	CAFile string
	srv    *httptest.Server

	mu       sync.Mutex
	vapidKey string
	subs     map[string]*Subscription
	pushes   []Push
	notify   chan struct{}
}

// Subscription is one browser's subscription.
type Subscription struct {
	ID       string
	Endpoint string
	key      *ecdh.PrivateKey
	auth     []byte

	mu     sync.Mutex
	status int // what the service answers pushes to it (0: 201 Created)
}

// Push is what the service received for a subscription, checked and
// decrypted; Err says what was wrong with it (the service answered 400,
// 401 or 403 then).
type Push struct {
	Subscription string
	Payload      []byte // the decrypted plaintext
	TTL          int
	Urgency      string
	Topic        string
	Claims       map[string]any // the VAPID JWT's
	Status       int            // what the service answered
	Err          error
}

// Start runs a fake push service until the test ends. vapidKey, when not
// empty (base64url), is the only application server key pushes may be
// signed with, as a browser that subscribed with it as its
// applicationServerKey requires; SetVAPIDKey sets it later.
func Start(t testing.TB, vapidKey string) *Service {
	t.Helper()
	s := &Service{vapidKey: vapidKey, subs: map[string]*Subscription{}, notify: make(chan struct{}, 1)}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.CAFile = filepath.Join(t.TempDir(), "push-service.crt")
	if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// SetVAPIDKey sets the application server key pushes must be signed with.
func (s *Service) SetVAPIDKey(key string) {
	s.mu.Lock()
	s.vapidKey = key
	s.mu.Unlock()
}

// Subscribe makes a subscription as a browser would.
func (s *Service) Subscribe(t testing.TB) *Subscription {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 18)
	rand.Read(id)
	auth := make([]byte, 16)
	rand.Read(auth)
	sub := &Subscription{ID: base64.RawURLEncoding.EncodeToString(id), key: key, auth: auth}
	sub.Endpoint = s.URL + "/wpush/v2/" + sub.ID
	s.mu.Lock()
	s.subs[sub.ID] = sub
	s.mu.Unlock()
	return sub
}

// JSON is the subscription as PushSubscription.toJSON() gives it.
func (sub *Subscription) JSON() map[string]any {
	return map[string]any{
		"endpoint":       sub.Endpoint,
		"expirationTime": nil,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(sub.key.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(sub.auth),
		},
	}
}

// Answer makes the service answer pushes to sub with status (410 Gone:
// the browser unsubscribed; 429 or 503: try later; 0: 201 Created).
func (sub *Subscription) Answer(status int) {
	sub.mu.Lock()
	sub.status = status
	sub.mu.Unlock()
}

// Pushes are what the service received so far, oldest first.
func (s *Service) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// Wait waits until the service has received n pushes, and returns them.
func (s *Service) Wait(ctx context.Context, n int) ([]Push, error) {
	for {
		if p := s.Pushes(); len(p) >= n {
			return p, nil
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return s.Pushes(), fmt.Errorf("pushtest: %d pushes, waiting for %d: %w", len(s.Pushes()), n, ctx.Err())
		}
	}
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/wpush/v2/")
	s.mu.Lock()
	sub := s.subs[id]
	s.mu.Unlock()
	if r.Method != http.MethodPost || !ok || sub == nil {
		http.NotFound(w, r)
		return
	}
	p := Push{Subscription: id, Urgency: r.Header.Get("Urgency"), Topic: r.Header.Get("Topic")}
	p.Status, p.Err = s.check(r, sub, &p)
	if p.Err == nil {
		sub.mu.Lock()
		if sub.status != 0 {
			p.Status = sub.status
		}
		sub.mu.Unlock()
	}
	s.mu.Lock()
	s.pushes = append(s.pushes, p)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if p.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(p.Status)
}

// check verifies a push as a push service and a browser would, and
// decrypts it into p.
func (s *Service) check(r *http.Request, sub *Subscription, p *Push) (int, error) {
	ttl, err := strconv.Atoi(r.Header.Get("TTL"))
	if err != nil || ttl < 0 {
		return http.StatusBadRequest, errors.New("no valid TTL header (RFC 8030 §5.2)")
	}
	p.TTL = ttl
	claims, err := s.checkVAPID(r.Header.Get("Authorization"))
	if err != nil {
		return http.StatusUnauthorized, err
	}
	p.Claims = claims
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		return http.StatusBadRequest, fmt.Errorf("Content-Encoding %q, want aes128gcm (RFC 8188)", ce)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8192))
	if err != nil {
		return http.StatusBadRequest, err
	}
	if len(body) > 4096 {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("the body is %d bytes; push services take 4096 at most", len(body))
	}
	plain, err := Decrypt(sub.key, sub.auth, body)
	if err != nil {
		return http.StatusBadRequest, err
	}
	p.Payload = plain
	return http.StatusCreated, nil
}

// checkVAPID verifies "vapid t=<JWT>, k=<public key>" (RFC 8292 §3): an
// ES256 JWT signed by k, aud the push service's origin, exp in the future
// and at most 24 hours away, sub a mailto: or https: contact.
func (s *Service) checkVAPID(header string) (map[string]any, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return nil, fmt.Errorf("Authorization %q is not the vapid scheme", header)
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		params[k] = v
	}
	keyBytes, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(params["k"], "="))
	if err != nil {
		return nil, errors.New("k= is not base64url")
	}
	s.mu.Lock()
	want := s.vapidKey
	s.mu.Unlock()
	if want != "" && params["k"] != want {
		return nil, errors.New("k= is not the applicationServerKey the subscription was made with")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), keyBytes)
	if err != nil {
		return nil, fmt.Errorf("k= is not a P-256 key: %w", err)
	}
	parts := strings.Split(params["t"], ".")
	if len(parts) != 3 {
		return nil, errors.New("t= is not a JWT")
	}
	var head struct {
		Alg, Typ string
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if json.Unmarshal(hb, &head) != nil || head.Alg != "ES256" {
		return nil, fmt.Errorf("the JWT's alg is %q, want ES256", head.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("the JWT's signature is not an ES256 signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("the JWT's signature does not verify with k=")
	}
	var claims map[string]any
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(cb, &claims); err != nil {
		return nil, errors.New("the JWT's claims are not JSON")
	}
	if aud, _ := claims["aud"].(string); aud != s.URL {
		return nil, fmt.Errorf("the JWT's aud is %q, want the push service's origin %s", aud, s.URL)
	}
	exp, _ := claims["exp"].(float64)
	if until := time.Until(time.Unix(int64(exp), 0)); until <= 0 || until > 24*time.Hour {
		return nil, fmt.Errorf("the JWT's exp is %v away; it must be in the future and at most 24 hours away", until)
	}
	if sub, _ := claims["sub"].(string); !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https://") {
		return nil, fmt.Errorf("the JWT's sub %q is not a mailto: or https: contact", sub)
	}
	return claims, nil
}

// Decrypt opens an aes128gcm message (RFC 8188) encrypted to a
// subscription (RFC 8291): the receiving side, as a browser does it.
func Decrypt(ua *ecdh.PrivateKey, authSecret, body []byte) ([]byte, error) {
	// The header: salt (16), record size (4), key id length (1), key id:
	// the application server's ephemeral public key (65).
	if len(body) < 21 {
		return nil, errors.New("the body is shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if rs < 18 || idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("aes128gcm header: record size %d, key id of %d bytes (want 65)", rs, idlen)
	}
	asPublic, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("the key id is not a P-256 point: %w", err)
	}
	ciphertext := body[21+idlen:]
	ecdhSecret, err := ua.ECDH(asPublic)
	if err != nil {
		return nil, err
	}
	// RFC 8291 §3.3–3.4: IKM from the ECDH secret and the auth secret.
	keyInfo := append(append([]byte("WebPush: info\x00"), ua.PublicKey().Bytes()...), asPublic.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, ecdhSecret, authSecret, string(keyInfo), 32)
	if err != nil {
		return nil, err
	}
	// RFC 8188 §2.2–2.3: the content encryption key and the nonce.
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	baseNonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	var plain []byte
	for seq := uint64(0); len(ciphertext) > 0; seq++ {
		n := min(int(rs), len(ciphertext))
		record := ciphertext[:n]
		ciphertext = ciphertext[n:]
		nonce := bytes.Clone(baseNonce)
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], seq)
		for i := range 8 {
			nonce[4+i] ^= s[i]
		}
		out, err := gcm.Open(nil, nonce, record, nil)
		if err != nil {
			return nil, fmt.Errorf("record %d does not decrypt: %w", seq, err)
		}
		// Padding: the data, a delimiter (2 for the last record, 1 before),
		// then zeros.
		out = bytes.TrimRight(out, "\x00")
		if len(out) == 0 {
			return nil, fmt.Errorf("record %d has no padding delimiter", seq)
		}
		last := len(ciphertext) == 0
		if d := out[len(out)-1]; last && d != 2 || !last && d != 1 {
			return nil, fmt.Errorf("record %d ends with delimiter %d", seq, d)
		}
		plain = append(plain, out[:len(out)-1]...)
	}
	return plain, nil
}
