#!/usr/bin/env bash
# `mero-release checksums verify` against a one-pass SHA-256 of the same files (bench/sha256once,
# as many files at a time as the verifier), interleaved over BENCH_ROUNDS rounds (default 5),
# on BENCH_FILES files of BENCH_FILE_MIB MiB (default 8 x 128 MiB = 1 GiB) of random data with
# a warm page cache. `sha256sum -c` and `openssl dgst -sha256` run in the same rounds and are
# reported. Goal: median ratio <= 1.2; the last line is the ratio (min and median); exit 10
# when the goal is missed.
#
# Usage: bench/checksum/run.sh     Env: BENCH_FILES, BENCH_FILE_MIB, BENCH_ROUNDS, TMPDIR
set -euo pipefail

files=${BENCH_FILES:-8}
mib=${BENCH_FILE_MIB:-128}
rounds=${BENCH_ROUNDS:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
info() { echo "[INFO] $*" >&2; }
fail() { echo "[FAIL] $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mero-checksum-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
mkdir -p "$data"

info "building mero-release and sha256once"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release && go build -o "$work/sha256once" ./bench/sha256once)

info "writing $files files of $mib MiB to $data"
for i in $(seq 1 "$files"); do
  head -c "$((mib * 1024 * 1024))" /dev/urandom >"$data/asset-$i.bin"
done

"$work/mero-release" checksums write --dir "$data" 2>/dev/null
(cd "$data" && sha256sum -c --quiet --strict checksums.sha256) || fail "sha256sum -c rejects the checksum file mero-release wrote"
info "sha256sum -c accepts the checksums.sha256 written by mero-release"

printf '\n## %s MiB in %s files, %s CPUs, warm page cache\n' "$((files * mib))" "$files" "$(nproc)"
REPORT_NAMES=("sha256sum -c" "openssl dgst -sha256")
REPORT_CMDS=("cd '$data' && sha256sum -c --quiet --strict checksums.sha256" "openssl dgst -sha256 '$data'/asset-*.bin")
compare "$rounds" "<=" 1.2 "mero-release checksums verify" "sha256once (one pass)" \
  "'$work/mero-release' checksums verify --dir '$data'" "'$work/sha256once' '$data'/asset-*.bin"
