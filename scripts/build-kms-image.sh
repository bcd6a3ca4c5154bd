#!/usr/bin/env bash
# build-kms-image.sh — build the KMS image of every profile (a thin wrapper over
# `mero-release build-kms-image`, the build-images stage of release-kms on its own).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: build-kms-image.sh --tag mero-kms-vX.Y.Z[-rc.N] [--kms-binary FILE] [--registry ghcr.io/OWNER] [OPTIONS...]

Builds the mero-kms image of each profile (debug, debug-read-only, locked-read-only) as a
reproducible OCI archive in -o DIR, renders each profile's app-compose pinned by digest, writes
kms-image-manifest.json, and pushes the images when --registry is given (token $GHCR_TOKEN).
`mero-release release-kms` (or `dagger call release-kms`) runs the same stage inside the whole
pipeline, and pushes only after the staged release passed its audit and E2E. Every option is passed to `mero-release build-kms-image`;
see `mero-release build-kms-image --help`.

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing asset.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
tag=$(mr_flag_value tag "$@")
case $tag in
  mero-kms-v* | "") ;;
  *) mr_usage_error "--tag $tag: not a mero-kms release tag (mero-kms-vX.Y.Z[-rc.N])" ;;
esac
mr_require_command build-kms-image
mr_exec build-kms-image "$@"
