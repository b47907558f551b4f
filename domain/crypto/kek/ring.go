package kek

import (
	"errors"
	"fmt"
)

// Ring is the current KEK with the previous ones, for a KEK rotation: it
// encrypts with the current KEK and decrypts what any of them encrypted,
// so every function keeps working while `skyflow kek rewrap` moves the
// stored keysets to the current KEK. Once that is done the previous KEKs
// can be dropped from the configuration.
type Ring struct {
	current  KEK
	previous []KEK
}

// NewRing returns a ring that encrypts with current.
func NewRing(current KEK, previous ...KEK) *Ring {
	return &Ring{current: current, previous: previous}
}

// ID is the current KEK's: what new wrappings are stored with.
func (r *Ring) ID() string { return r.current.ID() }

// Encrypt encrypts with the current KEK.
func (r *Ring) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return r.current.Encrypt(plaintext, associatedData)
}

// Decrypt tries the current KEK, then the previous ones: AES-GCM's tag
// tells a wrong key, so a ciphertext opens only under the KEK that made it.
func (r *Ring) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	var errs []error
	for _, k := range append([]KEK{r.current}, r.previous...) {
		pt, err := k.Decrypt(ciphertext, associatedData)
		if err == nil {
			return pt, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("kek: no key of the ring decrypts: %w", errors.Join(errs...))
}

// For returns the member KEK whose ID is id.
func (r *Ring) For(id string) (KEK, bool) {
	for _, k := range append([]KEK{r.current}, r.previous...) {
		if k.ID() == id {
			return k, true
		}
	}
	return nil, false
}

// Current is the KEK new wrappings use.
func (r *Ring) Current() KEK { return r.current }
