#!/usr/bin/env bash
# Compare `mero-release checksums verify` with GNU `sha256sum -c` on >= 1 GiB of files.
#
# Creates BENCH_FILES files of BENCH_FILE_MIB MiB (default 8 x 128 MiB = 1 GiB) of random
# data in a temporary directory (removed on exit), builds the CLI, writes checksums.sha256
# with it, checks that sha256sum -c accepts that file, then times both verifiers with
# hyperfine (installed from apt when possible) or, failing that, with repeated timed runs.
# Both tools run with the files in the page cache (a warm-up run first): the comparison
# is of hashing and I/O path, not of the disk.
#
# Usage: bench/checksum/run.sh            (from anywhere in the repository)
# Env:   BENCH_FILES, BENCH_FILE_MIB, BENCH_RUNS (default 5), TMPDIR
set -euo pipefail

files=${BENCH_FILES:-8}
mib=${BENCH_FILE_MIB:-128}
runs=${BENCH_RUNS:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

info() { echo "[INFO] $*" >&2; }
fail() { echo "[FAIL] $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mero-checksum-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
mkdir -p "$data"

info "building mero-release"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release)

info "writing $files files of $mib MiB to $data"
for i in $(seq 1 "$files"); do
  head -c "$((mib * 1024 * 1024))" /dev/urandom >"$data/asset-$i.bin"
done
total_mib=$((files * mib))

"$work/mero-release" checksums write --dir "$data" 2>/dev/null
(cd "$data" && sha256sum -c --quiet --strict checksums.sha256) || fail "sha256sum -c rejects the checksum file mero-release wrote"
info "sha256sum -c accepts the checksums.sha256 written by mero-release"

ours="$work/mero-release checksums verify --dir $data"
theirs="cd $data && sha256sum -c --quiet --strict checksums.sha256"

if ! command -v hyperfine >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  info "installing hyperfine from apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 || true
fi

printf '\n%s MiB in %s files, %s runs each, GOMAXPROCS=%s (CPUs: %s)\n\n' "$total_mib" "$files" "$runs" "${GOMAXPROCS:-default}" "$(nproc)"
if command -v hyperfine >/dev/null; then
  hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/h.json" \
    -n "mero-release checksums verify" "$ours >/dev/null 2>&1" \
    -n "sha256sum -c" "$theirs" >&2
  printf '| %-30s | %9s | %9s | %9s |\n' tool "mean (s)" "min (s)" "MiB/s"
  printf '|%s|%s|%s|%s|\n' "--------------------------------" "-----------" "-----------" "-----------"
  # Pull name, mean and min out of hyperfine's JSON without jq: one result per line.
  tr -d '\n' <"$work/h.json" | sed -E 's/" *: */":/g; s/, +/,/g' | grep -o '"command":"[^"]*","mean":[0-9.e-]*,"stddev":[0-9.e-]*,"median":[0-9.e-]*,"user":[0-9.e-]*,"system":[0-9.e-]*,"min":[0-9.e-]*' |
    while IFS= read -r line; do
      name=$(sed 's/.*"command":"\([^"]*\)".*/\1/' <<<"$line")
      mean=$(sed 's/.*"mean":\([0-9.e-]*\).*/\1/' <<<"$line")
      min=$(sed 's/.*"min":\([0-9.e-]*\).*/\1/' <<<"$line")
      awk -v n="$name" -v m="$mean" -v mi="$min" -v t="$total_mib" 'BEGIN { printf "| %-30s | %9.3f | %9.3f | %9.0f |\n", n, m, mi, t / m }'
    done
else
  info "hyperfine not available: timing $runs runs each with bash"
  measure() { # name command...
    local name=$1 best=999999 sum=0 t
    shift
    "$@" >/dev/null 2>&1 # warm-up
    for _ in $(seq 1 "$runs"); do
      t=$( { TIMEFORMAT=%R; time "$@" >/dev/null 2>&1; } 2>&1 )
      sum=$(awk -v a="$sum" -v b="$t" 'BEGIN { print a + b }')
      best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
    done
    awk -v n="$name" -v s="$sum" -v r="$runs" -v mi="$best" -v t="$total_mib" 'BEGIN { m = s / r; printf "| %-30s | %9.3f | %9.3f | %9.0f |\n", n, m, mi, t / m }'
  }
  printf '| %-30s | %9s | %9s | %9s |\n' tool "mean (s)" "min (s)" "MiB/s"
  printf '|%s|%s|%s|%s|\n' "--------------------------------" "-----------" "-----------" "-----------"
  measure "mero-release checksums verify" "$work/mero-release" checksums verify --dir "$data"
  measure "sha256sum -c" bash -c "$theirs"
fi
