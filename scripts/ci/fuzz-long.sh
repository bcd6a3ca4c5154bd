#!/usr/bin/env bash
# fuzz-long.sh — fuzz every parser of outside input for a long time (the scheduled workflow
# fuzz-scheduled.yaml runs it; CI's .ci/run keeps its short run of the same targets).
#
# Every FuzzXxx in a tracked *_test.go is a target. Each runs for --fuzztime (default 10m). A
# target that fails leaves its failing input under <package>/testdata/fuzz/<Target>/: the new
# inputs are copied, with the target's log, into --out (default out/fuzz-crashers) as
# <package path with / as _>/<Target>/…, ready to upload; the other targets still run.
# --shard I/N runs every N-th target starting with the I-th (1-based), for parallel jobs.
# --list prints the targets ("dir Target") and exits.
#
# Log lines: [INFO]/[PASS]/[FAIL]/[WARN]/[ERROR]. Exit codes: 0 no crasher, 10 at least one
# target failed (crashers in --out), 2 usage error, 1 the run could not start.
set -euo pipefail

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  echo "Usage: fuzz-long.sh [--fuzztime D] [--out DIR] [--shard I/N] [--list]"
}

fuzztime=10m out=out/fuzz-crashers shard=1/1 list=false
while [ $# -gt 0 ]; do
  case "$1" in
    --fuzztime) [ $# -ge 2 ] || { usage >&2; exit 2; }; fuzztime=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || { usage >&2; exit 2; }; out=$2; shift 2 ;;
    --shard) [ $# -ge 2 ] || { usage >&2; exit 2; }; shard=$2; shift 2 ;;
    --list) list=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "[ERROR] unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
if ! [[ $shard =~ ^([1-9][0-9]*)/([1-9][0-9]*)$ ]] || [ "${BASH_REMATCH[1]}" -gt "${BASH_REMATCH[2]}" ]; then
  echo "[ERROR] --shard $shard: want I/N with 1 <= I <= N" >&2; exit 2
fi
index=${BASH_REMATCH[1]} count=${BASH_REMATCH[2]}
if ! [[ $fuzztime =~ ^[0-9]+(s|m|h|x)$ ]]; then
  echo "[ERROR] --fuzztime $fuzztime: want a duration such as 30s, 10m, 1h (or Nx executions)" >&2; exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
command -v go >/dev/null || { echo "[ERROR] go is not on the PATH" >&2; exit 1; }

# targets: "dir Target", sorted, from the tracked test files (as .ci/run finds them).
targets=()
while read -r dir; do
  while read -r target; do
    targets+=("$dir $target")
  done < <(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort -u)
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u)
[ ${#targets[@]} -gt 0 ] || { echo "[ERROR] no fuzz targets found" >&2; exit 1; }

if $list; then printf '%s\n' "${targets[@]}"; exit 0; fi

mkdir -p "$out"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0 ran=0
for i in "${!targets[@]}"; do
  [ $(( i % count )) -eq $(( index - 1 )) ] || continue
  read -r dir target <<<"${targets[$i]}"
  corpus="$dir/testdata/fuzz/$target"
  before=$(find "$corpus" -type f 2>/dev/null | sort || true)
  echo "[INFO] fuzz $dir $target for $fuzztime"
  ran=$((ran + 1))
  if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir" >"$log" 2>&1; then
    echo "[PASS] fuzz $dir $target"
    continue
  fi
  new=$(comm -13 <(printf '%s\n' "$before") <(find "$corpus" -type f 2>/dev/null | sort) | sed '/^$/d' || true)
  if [ -z "$new" ] && grep -q 'context deadline exceeded' "$log"; then
    # Go 1.26's coordinator can end with a bare "context deadline exceeded" when -fuzztime ends
    # mid-call (golang/go#75804): no input failed (the same exception as .ci/run).
    echo "[WARN] fuzz $dir $target: the coordinator's deadline race, no failing input"
    continue
  fi
  failed=$((failed + 1))
  dest="$out/${dir//\//_}/$target"
  mkdir -p "$dest"
  cp "$log" "$dest/fuzz.log"
  if [ -n "$new" ]; then
    while read -r f; do cp "$f" "$dest/"; done <<<"$new"
    echo "[FAIL] fuzz $dir $target: $(wc -l <<<"$new") failing input(s) in $dest"
  else
    echo "[FAIL] fuzz $dir $target: failed without a failing input (log in $dest/fuzz.log)"
  fi
  tail -20 "$log"
done
echo "[INFO] shard $shard: $ran target(s) fuzzed for $fuzztime each, $failed failed"
[ "$failed" -eq 0 ] || exit 10
