#!/usr/bin/env bash
# publish-kms-release.sh — publish an assembled mero-kms release: draft, verified uploads, then
# publish, never a partial release (a thin wrapper over `mero-release publish`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: publish-kms-release.sh --tag mero-kms-vX.Y.Z[-rc.N] --dir ASSETS --store dir:PATH|github:OWNER/REPO [--notes FILE] [--concurrency N] [--json]

Publishes the assets in ASSETS as the KMS release --tag. Every asset of a mero-kms release
(attestation-policy-{debug,debug-read-only,locked-read-only}.json, kms-image-manifest.json,
published-mrtds.json, sbom.spdx.json, release-notes.md, checksums.sha256 and a .sigstore.json
bundle for each, and the signed provenance provenance.intoto.sigstore.json) must be there, else exit 11 and nothing is created; checksums.sha256 must match
them. An rc is published as a prerelease, never latest. Re-running resumes a draft without
duplicates; a published release is never changed (different assets: exit 10).

  --tag T           the mero-kms release tag (required)
  --dir DIR         directory holding the assembled assets (required)
  --store S         dir:PATH or github:OWNER/REPO (token $GITHUB_TOKEN, API $GITHUB_API_URL)
  --notes FILE      release notes (default: release-notes.md in --dir)
  --concurrency N   assets uploaded at once (default 4)

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing asset.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
tag=$(mr_flag_value tag "$@")
case $tag in
  mero-kms-v*) ;;
  "") mr_usage_error "--tag is required (mero-kms-vX.Y.Z[-rc.N])" ;;
  *) mr_usage_error "--tag $tag: not a mero-kms release tag (mero-kms-vX.Y.Z[-rc.N]); node images are published with publish-node-release.sh" ;;
esac
mr_exec publish "$@"
