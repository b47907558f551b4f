# Vault policy "skyflow-functions": what every Skyflow function may do in
# Vault. The functions use one Transit key, the key-encryption key
# "skyflow-kek", to wrap and unwrap the per-vault data keysets (envelope
# encryption, docs/ARCHITECTURE.md "Data and keys"). Transit does the crypto
# inside Vault: the KEK never leaves it, and this policy can't change it.
#
# Each vault also has a Transit key of its own, skyflow-kek-vault-<id>,
# which wraps its keysets a second time: deleting a vault destroys that key
# (crypto-shredding), so no backup of the database can be decrypted for the
# vault afterwards. The functions create those keys (encrypt upserts them)
# and delete them, and nothing else.
#
# Not granted, on purpose:
#   * any write to transit/keys/skyflow-kek (create, config, rotate, trim,
#     delete): KEK lifecycle is the operator's job (setup.sh, and
#     `vault write -f transit/keys/skyflow-kek/rotate` by hand or through the
#     key's auto_rotate_period);
#   * transit/export/* and transit/backup/*: the KEK is created with
#     exportable=false and allow_plaintext_backup=false, and nothing here may
#     ask for it;
#   * transit/datakey/*, transit/hmac/*, transit/sign/*: Skyflow generates
#     its data keys itself and only wraps them;
#   * every other mount and auth path. The functions' tokens are issued
#     without the "default" policy (setup.sh: token_no_default_policy), so
#     this file is all they hold. They log in again with their
#     ServiceAccount token when the short-lived Vault token expires, instead
#     of renewing it.

# Wrap a keyset under the KEK's latest version.
path "transit/encrypt/skyflow-kek" {
  capabilities = ["update"]
}

# Unwrap a keyset. Works with every key version from min_decryption_version on.
path "transit/decrypt/skyflow-kek" {
  capabilities = ["update"]
}

# Re-wrap a keyset under the KEK's latest version after a rotation, inside
# Vault, without the plaintext keyset passing through the function
# (keys-rewrap). Once everything is rewrapped, the operator can raise
# min_decryption_version.
path "transit/rewrap/skyflow-kek" {
  capabilities = ["update"]
}

# Read the key's metadata: type, latest_version, min_decryption_version,
# creation times, and exportable / deletion_allowed (so a function can refuse
# a misconfigured KEK). keys-rewrap needs it to know which wrapped keysets
# (ciphertext prefix vault:v<N>:) are behind. A read of an exportable=false
# key returns no key material.
path "transit/keys/skyflow-kek" {
  capabilities = ["read"]
}

# A vault's own key: made on its first use (upsert needs "create"), used to
# wrap and unwrap that vault's keysets.
path "transit/encrypt/skyflow-kek-vault-*" {
  capabilities = ["create", "update"]
}
path "transit/decrypt/skyflow-kek-vault-*" {
  capabilities = ["update"]
}

# Crypto-shredding a deleted vault (vaults-delete, keys-rotate-due): allow
# the vault key's deletion, then delete it with every version.
path "transit/keys/skyflow-kek-vault-*/config" {
  capabilities = ["update"]
}
path "transit/keys/skyflow-kek-vault-*" {
  capabilities = ["delete"]
}
