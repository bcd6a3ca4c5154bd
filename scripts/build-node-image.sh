#!/usr/bin/env bash
# build-node-image.sh — build the node image of every profile on the pinned GCP TDX base image
# (a thin wrapper over `mero-release build-node-image`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: build-node-image.sh --tag mero-tee-vX.Y.Z[-rc.N] [OPTIONS...]

Builds the mero-tee node image of each profile: --provider gcp runs Packer on
examples/node-image/packer (the pinned base image ubuntu-2404-tdx-vYYYYMMDD of
confidential-vm-images, GCP_PROJECT_ID / GCP_ZONE / GCP_IMAGE_FAMILY, key in
$GCP_SERVICE_ACCOUNT_KEY) and leaves DIR/packer-manifest.json for
`release-node-image --packer-manifest`; --provider sim copies the TDX simulator's image
description. collect-measurements.sh measures the images. Every option is
passed to `mero-release build-node-image`; see `mero-release build-node-image --help`.

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing asset.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
tag=$(mr_flag_value tag "$@")
case $tag in
  mero-tee-v* | "") ;;
  *) mr_usage_error "--tag $tag: not a mero-tee release tag (mero-tee-vX.Y.Z[-rc.N])" ;;
esac
mr_require_command build-node-image
mr_exec build-node-image "$@"
