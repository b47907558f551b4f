package push

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"net/mail"
	"net/url"
	"strings"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/skyflow-oss/skyflow/runtime/config"
)

// VAPID is the application server's identity (RFC 8292): a P-256 key pair
// whose public key browsers get as applicationServerKey (push-vapid-key)
// and whose private key signs each push's JWT, and a contact (subject)
// for the push services' operators. The keys are base64url (no padding):
// the public key an uncompressed point (65 bytes), the private key its
// 32-byte scalar.
type VAPID struct {
	PublicKey  string
	PrivateKey string
	Subject    string // mailto:… or https://…
}

// GenerateVAPID makes a new key pair with subject.
func GenerateVAPID(subject string) (*VAPID, error) {
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return nil, err
	}
	return &VAPID{PublicKey: pub, PrivateKey: priv, Subject: subject}, nil
}

// PublicKeyFromEnv reads SKYFLOW_VAPID_PUBLIC_KEY (push-vapid-key needs
// nothing else).
func PublicKeyFromEnv(env *config.Env) (string, error) {
	pub := env.Required("SKYFLOW_VAPID_PUBLIC_KEY", "the VAPID public key (base64url, 65 bytes), from Secret skyflow-vapid")
	if pub == "" {
		return "", nil
	}
	if _, err := publicKey(pub); err != nil {
		return "", err
	}
	return pub, nil
}

func publicKey(s string) (*ecdh.PublicKey, error) {
	b, ok := decodeKey(s)
	if !ok || len(b) != 65 {
		return nil, errors.New("SKYFLOW_VAPID_PUBLIC_KEY: is not a base64url P-256 public key (65 bytes, uncompressed)")
	}
	k, err := ecdh.P256().NewPublicKey(b)
	if err != nil {
		return nil, errors.New("SKYFLOW_VAPID_PUBLIC_KEY: is not a point on the P-256 curve")
	}
	return k, nil
}

// VAPIDFromEnv reads SKYFLOW_VAPID_PUBLIC_KEY, SKYFLOW_VAPID_PRIVATE_KEY
// and SKYFLOW_VAPID_SUBJECT and checks that the keys are a pair; errors
// name the settings, never the private key.
func VAPIDFromEnv(env *config.Env) (*VAPID, []error) {
	v := &VAPID{
		PublicKey:  env.Required("SKYFLOW_VAPID_PUBLIC_KEY", "the VAPID public key (base64url), from Secret skyflow-vapid"),
		PrivateKey: env.Required("SKYFLOW_VAPID_PRIVATE_KEY", "the VAPID private key (base64url), from Secret skyflow-vapid"),
		Subject:    env.Required("SKYFLOW_VAPID_SUBJECT", "a contact for push services: mailto:ops@example.com or an https URL"),
	}
	var errs []error
	var pub *ecdh.PublicKey
	if v.PublicKey != "" {
		var err error
		if pub, err = publicKey(v.PublicKey); err != nil {
			errs = append(errs, err)
		}
	}
	if v.PrivateKey != "" {
		b, ok := decodeKey(v.PrivateKey)
		priv, err := ecdh.P256().NewPrivateKey(b)
		switch {
		case !ok || len(b) != 32 || err != nil:
			errs = append(errs, errors.New("SKYFLOW_VAPID_PRIVATE_KEY: is not a base64url P-256 private key (32 bytes)"))
		case pub != nil && !bytes.Equal(priv.PublicKey().Bytes(), pub.Bytes()):
			errs = append(errs, errors.New("SKYFLOW_VAPID_PRIVATE_KEY and SKYFLOW_VAPID_PUBLIC_KEY are not one key pair"))
		}
	}
	if v.Subject != "" && !validSubject(v.Subject) {
		errs = append(errs, errors.New("SKYFLOW_VAPID_SUBJECT: must be mailto:<address> or an https URL"))
	}
	return v, errs
}

func validSubject(s string) bool {
	if addr, ok := strings.CutPrefix(s, "mailto:"); ok {
		a, err := mail.ParseAddress(addr)
		return err == nil && a.Address == addr
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// Subscriber is the subject as webpush-go takes it: it adds "mailto:" to
// anything that is not an https URL itself.
func (v *VAPID) Subscriber() string { return strings.TrimPrefix(v.Subject, "mailto:") }

// DecodePublicKey is the public key's bytes (for tests and tools).
func DecodePublicKey(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) != 65 {
		return nil, errors.New("not a base64url P-256 public key")
	}
	return b, nil
}
