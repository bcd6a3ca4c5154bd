#!/usr/bin/env bash
# collect-measurements.sh — boot each profile's node image on an ephemeral TDX VM, verify its
# quote and write published-mrtds.json (a thin wrapper over `mero-release measure-node`).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: collect-measurements.sh --image PROFILE=IMAGE... --version V [--provider sim|gcp] [-o published-mrtds.json] [gcp flags]

For every --image, boots an ephemeral TDX VM (the TDX simulator with --provider sim, a GCP
Confidential VM with --provider gcp), takes a quote over a fresh nonce, verifies it, extracts
MRTD and RTMR0-3 and deletes the VM on every path. The profiles must come out distinct. The
result is published-mrtds.json (stdout unless -o).

  --image P=IMAGE          profile image: a simulator manifest/directory, or a GCP image (repeatable)
  --version V              node image version X.Y.Z[-rc.N] (default $MERO_TEE_VERSION)
  --provider sim|gcp       VM provider (default sim)
  --gcp-project P          GCP project (default $GCP_PROJECT_ID)
  --gcp-zone Z             TDX-capable zone (default $GCP_ZONE)
  --gcp-credentials-file F service-account key (default $GCP_SERVICE_ACCOUNT_KEY)
  --trusted-root F         PEM roots quotes must chain to
  -o, --output FILE        write published-mrtds.json to FILE

Environment: MERO_RELEASE_BIN (the mero-release binary; built from this repository when unset).
Exit codes: 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing asset.
USAGE
}

if mr_wants_help "$@"; then usage; exit 0; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }
mr_exec measure-node "$@"
