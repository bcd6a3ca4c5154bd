#!/usr/bin/env bash
# Benchmark the sample KMS on loopback (127.0.0.1 only; every loop is bounded by count) and
# check its goals. Rounds are interleaved — each runs the crypto limit and then the flows — so
# that load from other processes weighs on both sides of the ratio alike.
#
#   BenchmarkFlowCrypto   the crypto of one key release (signatures, quote, HKDF), no HTTP:
#                         limit-flows/s = GOMAXPROCS / time per flow
#   BenchmarkFlows        complete challenge/get-key flows over HTTP at 1, 4 and 16
#                         concurrent callers: flows/s, p50, p99
#   BenchmarkPendingChallenges  BENCH_PENDING (default 100000) challenges held: B/challenge
#
# Goals (exit 10 when one is missed):
#   flows/s at 16 callers >= GOAL_RATIO (default 0.15) x limit-flows/s   (median of the rounds)
#   p99 at 16 callers <= GOAL_P99_MS (default 1000)                       (median of the rounds)
#   heap per pending challenge <= GOAL_BYTES (default 2048)
# The last line is "ratio R" (median flows/s at 16 callers over the crypto limit).
#
# Usage: bench/kms/run.sh           (from anywhere in the repository)
# Env:   BENCH_ROUNDS (default 3), BENCH_FLOWS (default 500 per concurrency), BENCH_PENDING,
#        GOAL_RATIO, GOAL_P99_MS, GOAL_BYTES
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rounds=${BENCH_ROUNDS:-3}
flows=${BENCH_FLOWS:-500}
pending=${BENCH_PENDING:-100000}
goal_ratio=${GOAL_RATIO:-0.15}
goal_p99=${GOAL_P99_MS:-1000}
goal_bytes=${GOAL_BYTES:-2048}

info() { echo "[INFO] $*" >&2; }
pass() { echo "[PASS] $*" >&2; }
failed() { echo "[FAIL] $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mero-kms-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$repo"
info "CPUs: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
go test -c -o "$work/kms.test" ./bench/kms

# metric FILE BENCH UNIT: the value reported before UNIT on BENCH's line.
metric() { awk -v b="$2" -v u="$3" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 2; i <= NF; i++) if ($i == u) print $(i-1) }' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'; }

: >"$work/ratios"
: >"$work/p99"
for r in $(seq 1 "$rounds"); do
  out="$work/round-$r"
  "$work/kms.test" -test.run '^$' -test.bench '^BenchmarkFlowCrypto$' -test.benchtime "${flows}x" >"$out"
  "$work/kms.test" -test.run '^$' -test.bench '^BenchmarkFlows$' -test.benchtime "${flows}x" >>"$out"
  limit=$(metric "$out" BenchmarkFlowCrypto limit-flows/s)
  f16=$(metric "$out" BenchmarkFlows/conc-16 flows/s)
  for c in 1 4 16; do
    info "round $r: $c concurrent: $(metric "$out" "BenchmarkFlows/conc-$c" flows/s) flows/s, p50 $(metric "$out" "BenchmarkFlows/conc-$c" p50-ms) ms, p99 $(metric "$out" "BenchmarkFlows/conc-$c" p99-ms) ms"
  done
  ratio=$(awk -v a="$f16" -v b="$limit" 'BEGIN { printf "%.3f", a / b }')
  info "round $r: crypto limit $limit flows/s; 16 concurrent $f16 flows/s; ratio $ratio"
  echo "$ratio" >>"$work/ratios"
  metric "$out" BenchmarkFlows/conc-16 p99-ms >>"$work/p99"
done
"$work/kms.test" -test.run '^$' -test.bench '^BenchmarkPendingChallenges$' -test.benchtime "${pending}x" >"$work/pending"
bytes=$(metric "$work/pending" BenchmarkPendingChallenges B/challenge)
heap=$(metric "$work/pending" BenchmarkPendingChallenges heap-MiB)
info "$pending pending challenges: $heap MiB heap, $bytes B/challenge"

ratio=$(median <"$work/ratios")
p99=$(median <"$work/p99")
status=0
if awk -v r="$ratio" -v g="$goal_ratio" 'BEGIN { exit !(r >= g) }'; then pass "flows/s at 16 callers is $ratio x the crypto limit (goal >= $goal_ratio)"; else failed "flows/s at 16 callers is $ratio x the crypto limit (goal >= $goal_ratio)"; status=10; fi
if awk -v p="$p99" -v g="$goal_p99" 'BEGIN { exit !(p <= g) }'; then pass "p99 at 16 callers $p99 ms (goal <= $goal_p99 ms)"; else failed "p99 at 16 callers $p99 ms (goal <= $goal_p99 ms)"; status=10; fi
if awk -v b="$bytes" -v g="$goal_bytes" 'BEGIN { exit !(b <= g) }'; then pass "$bytes B per pending challenge (goal <= $goal_bytes)"; else failed "$bytes B per pending challenge (goal <= $goal_bytes)"; status=10; fi
echo "ratio $ratio"
exit "$status"
