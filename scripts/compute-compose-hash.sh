#!/usr/bin/env bash
# compute-compose-hash.sh — the dstack compose hash of the KMS deployment for an image pinned by
# digest (a thin wrapper over `mero-release kms compose --json`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: compute-compose-hash.sh --image NAME@sha256:DIGEST

Renders the KMS's dstack app-compose running the image (which must be pinned by digest) and
prints {"image": ..., "compose_hash": ...} on stdout: the compose hash is the SHA-256 of the
app-compose as canonical JSON, the value dstack extends into RTMR3 and published-mrtds.json
records as compose_hash.

  --image REF   the KMS image, NAME@sha256:<64 hex> (required)

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error (e.g. an image not pinned by digest).
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
mr_exec kms compose --json "$@"
