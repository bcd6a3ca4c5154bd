#!/usr/bin/env bash
# verify-release-assets.sh — the release auditor on one release: assets, signatures, checksums,
# attestation policies (a thin wrapper over `mero-release audit`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: verify-release-assets.sh --tag T --store dir:PATH|github:OWNER/REPO [--key cosign.pub | --certificate-identity ID | --repository OWNER/REPO] [--trusted-root F] [--json] [--summary FILE]

Audits the release --tag (SPEC §6): every asset of its family is there (missing: exit 11),
every Sigstore bundle verifies and was made by the expected signer (keyless: the family's
release workflow of --repository, default $GITHUB_REPOSITORY, at refs/tags/<tag>; or --key),
every asset hashes to its checksums.sha256 entry, every asset that names a release names this
tag (a replay under another tag fails), and for a KMS release every attestation policy is valid
for its class. The signer comes from the caller or the repository's pinned
.github/release-signer.pub, never from the store; with none it is a usage error (2).
One [PASS]/[FAIL] line per finding; --json prints the report.

  --tag T            release tag, e.g. mero-kms-v1.3.0 or mero-tee-v1.3.0 (required)
  --store S          dir:PATH or github:OWNER/REPO (required)
  --repository R     repository of the signing workflow (default $GITHUB_REPOSITORY)
  --workflow F       signing workflow file (default: the family's release workflow)
  --ref-pattern RE   expected git ref of the signing run (default refs/tags/<tag>)
  --issuer URL       expected OIDC issuer (default GitHub Actions)
  --key FILE         public key of a key-signed release instead of a keyless identity
  --certificate-identity ID
                     keyless signer https://github.com/OWNER/REPO/.github/workflows/FILE@REF
  --repo-dir D       repository whose pinned .github/release-signer.pub is used (default .)
  --trusted-root F   Sigstore trusted_root.json (default: the public root through TUF)
  --summary FILE     append a Markdown summary (default $GITHUB_STEP_SUMMARY)

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 every check passed, 1 general error, 2 usage error, 10 a check failed, 11 asset missing.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
mr_exec audit "$@"
