#!/usr/bin/env bash
# generate-merod-kms-phala-attestation-config.sh — the merod [tee.kms.phala] section that makes a
# node verify the KMS: the KMS release's measurements for a profile and its URL (a thin wrapper
# over `mero-release kms-attestation-config`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: generate-merod-kms-phala-attestation-config.sh --kms-release mero-kms-vX.Y.Z --profile P --store dir:PATH|github:OWNER/REPO --kms-url URL (--key cosign.pub | --certificate-identity I --certificate-oidc-issuer U [--trusted-root F]) [-o FILE]

Downloads published-mrtds.json of the KMS release, verifies its Sigstore bundle against the
expected signer and its SHA-256 against the signed checksums.sha256, and writes merod's
[tee.kms.phala] section: url, and under [tee.kms.phala.attestation] the profile's MRTD,
RTMR0-3 and compose hash, the accepted TCB statuses, kms_version and profile. Pin the output to
a reviewed release; do not follow the latest release automatically.

  --kms-release T                  the KMS release tag (required)
  --profile P                      the KMS's profile (default $MERO_KMS_PROFILE)
  --store S                        dir:PATH or github:OWNER/REPO (token $GITHUB_TOKEN)
  --kms-url URL                    where nodes reach the KMS, http(s):// (required)
  --key FILE                       public key of a key-signed release
  --certificate-identity[-regexp]  expected signer (the release workflow), with
  --certificate-oidc-issuer[-regexp]  its OIDC issuer, for keyless releases
  --trusted-root F                 Sigstore trusted_root.json (default: the public root)
  --tcb-status S,...               accepted TCB statuses of the KMS platform (default UpToDate)
  -o, --output FILE                write the TOML to FILE (default stdout); --json prints JSON

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing asset.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
mr_exec kms-attestation-config "$@"
