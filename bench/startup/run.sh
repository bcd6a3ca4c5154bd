#!/usr/bin/env bash
# Start-up cost: `mero-release --help` against `cosign --help` (cosign v2.6.1 from
# $COSIGN_CACHE, installed there once like bench/sign), BENCH_CALLS calls per side per round
# (default 20), interleaved over BENCH_ROUNDS rounds (default 5). Goal: median ratio <= 1.1.
# The last line is the ratio (min and median); exit 10 when the goal is missed. To see where
# the time goes: GODEBUG=inittrace=1 mero-release --help.
#
# Usage: bench/startup/run.sh     Env: BENCH_CALLS, BENCH_ROUNDS, COSIGN_CACHE, TMPDIR
set -euo pipefail

calls=${BENCH_CALLS:-20}
rounds=${BENCH_ROUNDS:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
info() { echo "[INFO] $*" >&2; }
die() { echo "[ERROR] $*" >&2; exit 1; }

bench_cosign
work=$(mktemp -d "${TMPDIR:-/tmp}/mero-startup-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
info "building mero-release"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release)
"$work/mero-release" --help >/dev/null && "$cosign" --help >/dev/null || die "a --help failed"

printf '\n## %s calls of --help per side and round, %s CPUs\n' "$calls" "$(nproc)"
compare "$rounds" "<=" 1.1 "mero-release --help" "cosign --help" \
  "for i in \$(seq $calls); do '$work/mero-release' --help; done" \
  "for i in \$(seq $calls); do '$cosign' --help; done"
