// Package credentials makes and checks the two kinds of machine credential
// (API.md, "Service-account access tokens"):
//
//   - Service accounts, the Skyflow way: an RSA key pair whose private half is
//     handed out once in a credentials.json, field for field the file Skyflow
//     SDKs read. The SDK signs a short-lived JWT assertion with it and trades
//     it for an access token; VerifyAssertion checks such an assertion and
//     ReplayGuard makes each one usable once.
//   - API keys: long random strings stored only as a hash.
//
// The package reads no database: the caller looks keys up (PublicKeyLookup)
// and stores hashes. Errors a client may see are *apierr.Error; their
// messages never echo a key, a private key or an assertion.
package credentials

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Credentials is the credentials.json a Skyflow SDK reads, field for field:
// the JSON names are the wire format and must not change.
type Credentials struct {
	ClientID   string `json:"clientID"`
	ClientName string `json:"clientName"`
	KeyID      string `json:"keyID"`
	TokenURI   string `json:"tokenURI"`
	// PrivateKey is PEM "-----BEGIN PRIVATE KEY-----" (PKCS#8), the form
	// every Skyflow SDK parses (the Java SDK accepts nothing else).
	PrivateKey string `json:"privateKey"`
}

// KeyBits is the size of service-account keys. 2048 bits, not more: it is
// what Skyflow issues and what SDKs and their JWT libraries are tested with,
// it is good for many years (NIST: through 2030), and every token request
// verifies an RS256 signature, which costs roughly the cube of the size.
const KeyBits = 2048

// NewClientID returns a new service-account client id: 32 lower-case hex
// digits (128 random bits), so ids cannot be guessed or enumerated.
func NewClientID() string { return randomHex() }

// NewKeyPair makes a key pair for the service account clientID and returns
// the credentials.json for it, with a new KeyID, and the public key (PKIX
// DER) to store. The private key exists only in creds: the caller hands it
// out once and never stores it.
func NewKeyPair(clientID, clientName, tokenURI string) (creds Credentials, publicKeyDER []byte, err error) {
	if clientID == "" || tokenURI == "" {
		return Credentials{}, nil, errors.New("credentials: a key pair needs a client id and a token URI")
	}
	priv, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("credentials: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("credentials: encode private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("credentials: encode public key: %w", err)
	}
	return Credentials{
		ClientID:   clientID,
		ClientName: clientName,
		KeyID:      randomHex(),
		TokenURI:   tokenURI,
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}, pub, nil
}

// ParsePublicKey reads a public key stored as PKIX DER (what NewKeyPair
// returns), for a PublicKeyLookup.
func ParsePublicKey(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("credentials: public key: %w", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("credentials: public key is %T, not RSA", k)
	}
	return pub, nil
}

// privateKey reads the PEM private key of a credentials.json. PKCS#1 ("RSA
// PRIVATE KEY") is accepted too, as the SDKs' JWT libraries do. Errors never
// include the key.
func privateKey(p string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("credentials: privateKey is not PEM")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("credentials: privateKey is not a valid PKCS#8 key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("credentials: privateKey is not an RSA key")
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("credentials: privateKey is not a valid PKCS#1 key")
		}
		return k, nil
	}
	return nil, fmt.Errorf("credentials: privateKey is PEM %q, want \"PRIVATE KEY\"", block.Type)
}

// randomHex returns 32 lower-case hex digits of crypto/rand.
func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b)
}
