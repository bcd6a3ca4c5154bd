#!/usr/bin/env bash
# Audit a large local release and compare its wall time with `sha256sum` over the same files.
#
# Builds a key-signed mero-tee release of BENCH_AUDIT_MIB MiB (default 1024) of content in a
# directory store under a temporary directory (removed on exit), then times, RUNS times each
# with a warm page cache:
#   - mero-release audit --store dir:… --key cosign.pub  (completeness, every signature
#     re-verified, every asset hashed against checksums.sha256; each byte read once)
#   - sha256sum over every asset file of the release (the floor: hashing alone)
# and prints a table with the best time of each and their ratio; exit 10 above the target
# (audit ≤ 1.2 × sha256sum).
#
# Usage: bench/audit/run.sh      Env: BENCH_AUDIT_MIB (default 1024), RUNS (default 3), TMPDIR
set -euo pipefail

mib=${BENCH_AUDIT_MIB:-1024}
runs=${RUNS:-3}
tag=mero-tee-v1.0.0
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
info() { echo "[INFO] $*" >&2; }
die() { echo "[ERROR] $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mero-audit-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

info "building mero-release and the release generator"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release && go build -o "$work/mkrelease" ./bench/audit/mkrelease)
info "building a ${mib} MiB release $tag in $work/store"
assets=$("$work/mkrelease" -store "$work/store" -tag "$tag" -mib "$mib" -key-out "$work/cosign.pub")
bytes=$(du -sb "$assets" | cut -f1)

audit() { "$work/mero-release" audit --tag "$tag" --store "dir:$work/store" --key "$work/cosign.pub"; }
hashall() { sha256sum "$assets"/*; }

audit >/dev/null 2>"$work/audit.log" || { cat "$work/audit.log" >&2; die "the audit of the generated release failed"; }
hashall >/dev/null # warm the page cache for both

seconds() { # wall time of "$@" in seconds
  local t
  t=$( { TIMEFORMAT=%R; time "$@" >/dev/null 2>&1; } 2>&1 )
  echo "$t"
}
best() { # best of $runs runs of "$@"
  local b="" t
  for _ in $(seq "$runs"); do
    t=$(seconds "$@")
    if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN { exit !(t < b) }'; then b=$t; fi
  done
  echo "$b"
}

info "timing: best of $runs runs each"
t_sha=$(best hashall)
t_audit=$(best audit)

printf '\n%s: %s files, %.1f MiB, %s CPUs, warm page cache, best of %s\n\n' "$tag" "$(find "$assets" -maxdepth 1 -type f | wc -l)" \
  "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$(nproc)" "$runs"
printf '| %-52s | %9s | %9s |\n' method "wall (s)" "MiB/s"
printf '|%s|%s|%s|\n' "------------------------------------------------------" "-----------" "-----------"
awk -v t="$t_sha" -v b="$bytes" 'BEGIN { printf "| %-52s | %9.3f | %9.0f |\n", "sha256sum (all assets)", t, b / 1048576 / t }'
awk -v t="$t_audit" -v b="$bytes" 'BEGIN { printf "| %-52s | %9.3f | %9.0f |\n", "mero-release audit (4 checks, each byte read once)", t, b / 1048576 / t }'
ratio=$(awk -v a="$t_audit" -v s="$t_sha" 'BEGIN { printf "%.2f", a / s }')
printf '\naudit / sha256sum = %s (target ≤ 1.20)\n' "$ratio"
if awk -v r="$ratio" 'BEGIN { exit !(r <= 1.2) }'; then
  echo "[PASS] the audit is within 1.2x of sha256sum" >&2
else
  echo "[FAIL] the audit is above the 1.2x target" >&2
  exit 10
fi
