#!/usr/bin/env bash
# The audit against a one-pass SHA-256 of the same files, side by side.
#
# 1. A key-signed mero-tee release of BENCH_AUDIT_MIB MiB (default 1024) in a directory store:
#    `mero-release audit` (completeness, every signature verified, every asset hashed against
#    checksums.sha256; each byte read and hashed once) against bench/sha256once over the
#    release's asset files (each file read once, as many at a time as the audit).
#    Goal: median ratio <= 1.2. `sha256sum` and `openssl dgst -sha256` are reported too.
# 2. Linearity: the same release with BENCH_AUDIT_EXTRA (default 1000) more assets of
#    BENCH_AUDIT_EXTRA_KIB KiB (default 256): the audit against sha256once over all of them.
#    Goal: median ratio <= 2.
# Both sides run with a warm page cache, interleaved over BENCH_ROUNDS rounds (default 5).
# The last line gives both ratios (min and median); exit 10 when a goal is missed.
#
# Usage: bench/audit/run.sh   Env: BENCH_AUDIT_MIB, BENCH_AUDIT_EXTRA, BENCH_AUDIT_EXTRA_KIB, BENCH_ROUNDS, TMPDIR
set -euo pipefail

mib=${BENCH_AUDIT_MIB:-1024}
extra=${BENCH_AUDIT_EXTRA:-1000}
extra_kib=${BENCH_AUDIT_EXTRA_KIB:-256}
rounds=${BENCH_ROUNDS:-5}
tag=mero-tee-v1.0.0
# the linearity release is an rc: assets the family does not list are reported there, not
# blocking (a stable release with unlisted assets fails its audit, SPEC §6)
tag_many=mero-tee-v1.0.0-rc.1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
info() { echo "[INFO] $*" >&2; }
die() { echo "[ERROR] $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mero-audit-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

info "building mero-release, the release generator and sha256once"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release && go build -o "$work/mkrelease" ./bench/audit/mkrelease &&
  go build -o "$work/sha256once" ./bench/sha256once)

info "building a ${mib} MiB release $tag in $work/big"
big=$("$work/mkrelease" -store "$work/big" -tag "$tag" -mib "$mib" -key-out "$work/big.pub")
info "building a release with $extra extra assets of $extra_kib KiB in $work/many"
many=$("$work/mkrelease" -store "$work/many" -tag "$tag_many" -mib 4 -extra "$extra" -extra-kib "$extra_kib" -key-out "$work/many.pub")

for s in big:$tag many:$tag_many; do
  "$work/mero-release" audit --tag "${s#*:}" --store "dir:$work/${s%%:*}" --key "$work/${s%%:*}.pub" >/dev/null 2>"$work/${s%%:*}.log" ||
    { cat "$work/${s%%:*}.log" >&2; die "the audit of the generated release (${s%%:*}) failed"; }
done
"$work/sha256once" "$big"/* "$many"/* >/dev/null # warm the page cache

status=0
printf '\n## %s MiB release (%s files), %s CPUs, warm page cache\n' "$mib" "$(find "$big" -maxdepth 1 -type f | wc -l)" "$(nproc)"
REPORT_NAMES=("sha256sum (all assets)" "openssl dgst -sha256 (all assets)")
REPORT_CMDS=("sha256sum '$big'/*" "openssl dgst -sha256 '$big'/*")
compare "$rounds" "<=" 1.2 "mero-release audit (1 GiB)" "sha256once (one pass)" \
  "'$work/mero-release' audit --tag $tag --store 'dir:$work/big' --key '$work/big.pub'" \
  "'$work/sha256once' '$big'/*" | tee "$work/big.out" || status=$?
REPORT_NAMES=() REPORT_CMDS=()

printf '\n## %s extra assets of %s KiB (%s files)\n' "$extra" "$extra_kib" "$(find "$many" -maxdepth 1 -type f | wc -l)"
compare "$rounds" "<=" 2 "mero-release audit ($extra assets)" "sha256once (one pass)" \
  "'$work/mero-release' audit --tag $tag_many --store 'dir:$work/many' --key '$work/many.pub'" \
  "'$work/sha256once' '$many'/*" | tee "$work/many.out" || status=$?

echo
echo "$(tail -1 "$work/big.out") | $(tail -1 "$work/many.out")"
exit "$status"
