#!/usr/bin/env bash
# generate-attestation-policy.sh — one profile's KMS attestation policy from node measurements
# (a thin wrapper over `mero-release policy generate`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: generate-attestation-policy.sh --kms-version V --profile P [--measurements published-mrtds.json]... [--tcb-status S,...] [-o FILE] [--json]

Generates attestation-policy-{profile}.json for KMS version V: each allowlist (allowed_mrtd,
allowed_rtmr0..3) is the union of the profile's records in the given node releases'
published-mrtds.json. Without measurements for the profile the policy is "policy_not_ready"
(allowed for release candidates only). The policy goes to stdout unless -o is given.

  --kms-version V       KMS version X.Y.Z[-rc.N] (default $MERO_KMS_VERSION)
  --profile P           debug, debug-read-only or locked-read-only (default $MERO_KMS_PROFILE)
  --measurements FILE   a node release's published-mrtds.json (repeatable)
  --tcb-status S,...    accepted TCB statuses (default UpToDate)
  -o, --output FILE     write the policy to FILE

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing asset.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
mr_exec policy generate "$@"
