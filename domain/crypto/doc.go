// Package crypto is envelope encryption for vaults. Each vault has two Tink
// keysets of its own: values (AES-256-GCM) seals cell values, and index
// (HMAC-SHA256 PRF) derives blind indexes and token seeds, so equality
// lookups and deterministic tokens never need the values key. Both keysets
// are stored only wrapped by a key-encryption key ([kek.KEK]), bound to the
// vault and purpose by associated data.
//
// Every ciphertext is bound to its cell (vault, table, column, record) by
// associated data, so a value copied to another cell does not open there.
package crypto
