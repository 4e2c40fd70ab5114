#!/usr/bin/env bash
# Keep a fresh GitHub Actions OIDC token for Azure in $AZURE_FEDERATED_TOKEN_FILE for the rest of the job.
#
# Why: a GitHub OIDC token lives about five to ten minutes and `az login --federated-token` cannot renew
# from it (Azure/azure-cli#28708, Azure/login#180), so anything that signs in through the Azure CLI fails
# once its first access token expires (60-90 minutes). The Pulumi CLI's azblob state backend and its Key
# Vault secrets provider sign in with the Azure SDK's DefaultAzureCredential (pulumi/pulumi
# pkg/backend/diy/backend.go -> gocloud.dev/blob/azureblob NewDefaultClient), whose
# WorkloadIdentityCredential reads the token from AZURE_FEDERATED_TOKEN_FILE (with AZURE_CLIENT_ID and
# AZURE_TENANT_ID) and reads the file again whenever it needs a new access token (it keeps what it read
# for ten minutes: Azure/azure-sdk-for-go sdk/azidentity/workload_identity.go). azcluster's own calls do
# the same with `--auth oidc`. So this script fetches a token now (failing the step if it cannot), then
# rewrites the file every OIDC_REFRESH_SECONDS (default 60) in the background until the job ends.
#
# Needs `permissions: id-token: write` (GitHub then sets ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN).
set -euo pipefail

file=${AZURE_FEDERATED_TOKEN_FILE:?set AZURE_FEDERATED_TOKEN_FILE to where the token should be kept}
interval=${OIDC_REFRESH_SECONDS:-60}
audience=${OIDC_AUDIENCE:-api://AzureADTokenExchange}
: "${ACTIONS_ID_TOKEN_REQUEST_URL:?no OIDC token request URL: give the job permissions: id-token: write}"
: "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:?no OIDC request token: give the job permissions: id-token: write}"
umask 077

fetch() {
  local tmp="${file}.$$.tmp" body token
  body=$(curl -fsS --max-time 30 -H "Authorization: bearer ${ACTIONS_ID_TOKEN_REQUEST_TOKEN}" \
    "${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=${audience}") || return 1
  token=$(printf '%s' "$body" | sed -n 's/.*"value"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || return 1
  printf '%s' "$token" > "$tmp"
  mv -f "$tmp" "$file" # atomic: a reader never sees half a token
}

mkdir -p "$(dirname "$file")"
fetch || { echo "error: could not get an OIDC token from GitHub for ${audience}" >&2; exit 1; }

(
  while sleep "$interval"; do
    fetch || echo "warning: could not refresh the OIDC token in ${file}; retrying" >&2
  done
) </dev/null >>"${file}.log" 2>&1 &
echo $! > "${file}.pid"
echo "OIDC token kept fresh in ${file} every ${interval}s (refresher pid $!)"
