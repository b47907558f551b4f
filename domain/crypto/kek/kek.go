// Package kek holds the key-encryption key (KEK) that wraps each vault's data
// keysets. Data keys never leave a process unwrapped; what is stored is the
// keyset encrypted by a KEK, and the KEK itself lives in HashiCorp Vault's
// Transit engine in production or in a local master key for development.
//
// Both backends are a [tink.AEAD] so Tink can wrap keysets with them
// directly, and both bind associated data, so a wrapped keyset cannot be
// replayed under another name.
package kek

import "github.com/tink-crypto/tink-go/v2/tink"

// KEK wraps and unwraps keysets.
type KEK interface {
	tink.AEAD

	// ID names the backend and key, such as "local:1a2b3c4d" or
	// "transit:skyflow-kek". It is stored beside wrapped keysets so an
	// operator can tell which KEK a keyset needs; it is not secret.
	ID() string
}
