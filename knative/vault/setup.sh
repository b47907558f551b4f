#!/usr/bin/env bash
# One-time HashiCorp Vault setup for Skyflow. An operator runs it once per
# Vault cluster. It is safe to run again: each step checks what is already
# there.
#
# Skyflow keeps each vault's data keysets wrapped by one key-encryption key
# (KEK) in Vault's Transit engine. Every function logs in to Vault with its
# Kubernetes ServiceAccount token and may use that key and nothing else
# (skyflow-functions.hcl). The steps:
#
#   1. enable the Transit secrets engine at transit/
#   2. create the KEK transit/keys/skyflow-kek: type aes256-gcm96,
#      exportable=false, allow_plaintext_backup=false (both can never be
#      turned back off once on, so they are checked on every run),
#      deletion_allowed=false, rotated automatically every
#      SKYFLOW_KEK_AUTO_ROTATE_PERIOD
#   3. write the policy skyflow-functions from skyflow-functions.hcl
#   4. enable the Kubernetes auth method at kubernetes/ and point it at the
#      cluster
#   5. write the role skyflow-functions: ServiceAccount skyflow-functions in
#      namespace skyflow only (knative/base/serviceaccount.yaml), policy
#      skyflow-functions only (no "default" policy), short-lived batch tokens
#   6. check with a token of that policy that encrypt/decrypt work and that
#      key export is refused
#
# Needs: the vault CLI, VAULT_ADDR, and a token allowed to mount engines,
# write policies and configure auth (VAULT_TOKEN or `vault login`). Vault's
# Kubernetes auth method calls the cluster's TokenReview API: when Vault runs
# in the cluster, its own ServiceAccount needs the system:auth-delegator
# ClusterRole.
#
# Settings (environment, all optional):
#   K8S_HOST                        API server URL as Vault sees it
#                                   (default https://kubernetes.default.svc,
#                                   right when Vault runs in the cluster)
#   K8S_CA_CERT                     PEM file of the API server's CA (Vault
#                                   outside the cluster)
#   TOKEN_REVIEWER_JWT              a long-lived token allowed to call
#                                   TokenReview (Vault outside the cluster)
#   VAULT_K8S_AUDIENCE              require this audience in the functions'
#                                   ServiceAccount tokens (needs a projected
#                                   token with that audience in the pods)
#   SKYFLOW_KEK_AUTO_ROTATE_PERIOD  default 8760h (yearly); 0 turns it off
#
# Tokens: 15-minute batch tokens, never renewed. A function logs in again
# (auth/kubernetes/login, role skyflow-functions) before its token expires.
# Batch tokens are not stored by Vault, so scale-to-zero functions that log
# in on every cold start cost Vault nothing to keep.
#
# Later, by hand:
#   rotate the KEK now:     vault write -f transit/keys/skyflow-kek/rotate
#   after keys-rewrap has rewrapped every keyset to version N:
#                           vault write transit/keys/skyflow-kek/config min_decryption_version=N
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
policy_file="$here/skyflow-functions.hcl"

k8s_host="${K8S_HOST:-https://kubernetes.default.svc}"
rotate_period="${SKYFLOW_KEK_AUTO_ROTATE_PERIOD:-8760h}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

command -v vault >/dev/null 2>&1 || die "the vault CLI is not on PATH"
[[ -n "${VAULT_ADDR:-}" ]] || die "set VAULT_ADDR to the Vault server's address"
[[ -f "$policy_file" ]] || die "missing $policy_file"
vault token lookup >/dev/null || die "not logged in to Vault at $VAULT_ADDR (set VAULT_TOKEN or run vault login)"

# 1. Transit engine.
mounts="$(vault secrets list -format=json)"
if grep -q '"transit/"' <<<"$mounts"; then
  mount_type="$(vault read -field=type sys/mounts/transit)"
  [[ "$mount_type" == "transit" ]] || die "transit/ is mounted but is a $mount_type engine, not transit"
  say "transit/ already enabled"
else
  say "enabling the Transit secrets engine at transit/"
  vault secrets enable -path=transit transit
fi

# 2. The KEK. type, exportable and allow_plaintext_backup are fixed when the key
# is created; an existing key with other values is an error, never "fixed".
if vault read -format=json transit/keys/skyflow-kek >/dev/null 2>&1; then
  key_type="$(vault read -field=type transit/keys/skyflow-kek)"
  exportable="$(vault read -field=exportable transit/keys/skyflow-kek)"
  plaintext_backup="$(vault read -field=allow_plaintext_backup transit/keys/skyflow-kek)"
  [[ "$key_type" == "aes256-gcm96" ]] || die "transit/keys/skyflow-kek exists with type $key_type, expected aes256-gcm96"
  [[ "$exportable" == "false" ]] || die "transit/keys/skyflow-kek is exportable: create a new key; this one can't be made non-exportable"
  [[ "$plaintext_backup" == "false" ]] || die "transit/keys/skyflow-kek allows plaintext backup: create a new key"
  say "transit/keys/skyflow-kek already exists (aes256-gcm96, not exportable)"
else
  say "creating transit/keys/skyflow-kek"
  vault write transit/keys/skyflow-kek \
    type=aes256-gcm96 \
    exportable=false \
    allow_plaintext_backup=false
fi
vault write transit/keys/skyflow-kek/config \
  deletion_allowed=false \
  auto_rotate_period="$rotate_period"

# 3. The policy.
say "writing policy skyflow-functions"
vault policy write skyflow-functions "$policy_file"

# 4. Kubernetes auth.
auths="$(vault auth list -format=json)"
if grep -q '"kubernetes/"' <<<"$auths"; then
  say "kubernetes/ auth already enabled"
else
  say "enabling the Kubernetes auth method at kubernetes/"
  vault auth enable -path=kubernetes kubernetes
fi
config_args=("kubernetes_host=$k8s_host")
if [[ -n "${K8S_CA_CERT:-}" ]]; then
  [[ -f "$K8S_CA_CERT" ]] || die "K8S_CA_CERT: no file $K8S_CA_CERT"
  config_args+=("kubernetes_ca_cert=@$K8S_CA_CERT")
fi
if [[ -n "${TOKEN_REVIEWER_JWT:-}" ]]; then
  config_args+=("token_reviewer_jwt=$TOKEN_REVIEWER_JWT")
fi
vault write auth/kubernetes/config "${config_args[@]}"

# 5. The functions' role.
role_extra=()
if [[ -n "${VAULT_K8S_AUDIENCE:-}" ]]; then
  role_extra+=("audience=$VAULT_K8S_AUDIENCE")
fi
say "writing role skyflow-functions"
vault write auth/kubernetes/role/skyflow-functions \
  bound_service_account_names=skyflow-functions \
  bound_service_account_namespaces=skyflow \
  token_policies=skyflow-functions \
  token_no_default_policy=true \
  token_type=batch \
  token_ttl=15m \
  token_max_ttl=15m \
  "${role_extra[@]}"

# 6. Check the policy as the functions will hold it. Creating a token with a
# policy the caller lacks needs root or sudo; without it, skip the check.
if check_token="$(vault token create -type=batch -policy=skyflow-functions -no-default-policy \
  -ttl=2m -field=token 2>/dev/null)"; then
  probe="$(printf 'skyflow-setup-check' | base64)"
  ciphertext="$(VAULT_TOKEN="$check_token" vault write -field=ciphertext transit/encrypt/skyflow-kek plaintext="$probe")"
  decrypted="$(VAULT_TOKEN="$check_token" vault write -field=plaintext transit/decrypt/skyflow-kek ciphertext="$ciphertext")"
  [[ "$decrypted" == "$probe" ]] || die "check failed: decrypt did not return what was encrypted"
  if VAULT_TOKEN="$check_token" vault read transit/export/encryption-key/skyflow-kek >/dev/null 2>&1; then
    die "check failed: a skyflow-functions token could read transit/export"
  fi
  say "checked: a skyflow-functions token can encrypt and decrypt with skyflow-kek and can't export it"
else
  say "skipped the policy check: this token can't create a token with policy skyflow-functions"
fi

say "done: functions log in at auth/kubernetes/login with role skyflow-functions"
