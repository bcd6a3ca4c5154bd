#!/usr/bin/env bash
# Benchmark the sample KMS on loopback (127.0.0.1 only; every request loop is bounded by count).
#
#   1. BenchmarkChallengeGetKey: BENCH_FLOWS complete key releases (challenge, signature, node
#      quote, get-key with quote verification, policy check, HKDF), 8 concurrent flows per CPU:
#      throughput (flows/s) and p50/p99 latency of one flow.
#   2. BenchmarkChallengePileUp: BENCH_CHALLENGES challenges requested and never used, far past
#      the cap of 4096 outstanding: 429s past the cap, heap growth bounded (bytes per held
#      challenge, including the HTTP machinery).
#
# Usage: bench/kms/run.sh           (from anywhere in the repository)
# Env:   BENCH_FLOWS (default 3000), BENCH_CHALLENGES (default 50000), BENCH_COUNT (default 1)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
flows=${BENCH_FLOWS:-3000}
challenges=${BENCH_CHALLENGES:-50000}
count=${BENCH_COUNT:-1}

info() { echo "[INFO] $*" >&2; }

info "CPUs: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
cd "$repo"
info "challenge/get-key: $flows flows"
go test ./bench/kms -run '^$' -bench '^BenchmarkChallengeGetKey$' -benchtime "${flows}x" -count "$count" | grep -E '^(Benchmark|cpu:)'
info "challenge pile-up: $challenges requests against a cap of 4096"
go test ./bench/kms -run '^$' -bench '^BenchmarkChallengePileUp$' -benchtime "${challenges}x" -count "$count" | grep -E '^(Benchmark|cpu:)'
