#!/usr/bin/env bash
# Verify 200 keyless Sigstore bundles three ways and print a table:
#   - in one process: BenchmarkVerifyBundles (pipeline/sign), one sign.Verifier for all 200;
#   - 200 `mero-release verify` processes;
#   - 200 `cosign verify-blob` processes (cosign v2.6.1, installed into $COSIGN_CACHE
#     by scripts/ci/cosign-interop.sh or here, once).
# The bundles come from the in-process Sigstore (pipeline/sign/signtest): Fulcio certificate
# with an embedded SCT, Rekor entry with SET and inclusion proof; all checks run offline
# against the matching trusted_root.json.
#
# Usage: bench/sign/run.sh      Env: BENCH_BUNDLES (default 200), COSIGN_CACHE, TMPDIR
set -euo pipefail

n=${BENCH_BUNDLES:-200}
COSIGN_VERSION=v2.6.1
cache=${COSIGN_CACHE:-/var/cache/mero-release/bin}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
info() { echo "[INFO] $*" >&2; }
die() { echo "[ERROR] $*" >&2; exit 1; }

cosign="$cache/cosign"
if ! { [ -x "$cosign" ] && "$cosign" version 2>/dev/null | grep -q "GitVersion: *$COSIGN_VERSION\$"; }; then
  info "installing cosign $COSIGN_VERSION into $cache (one-time, several minutes)"
  mkdir -p "$cache" && GOBIN="$cache" go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION" || die "cannot install cosign"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mero-sign-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TUF_ROOT="$work/tuf"

info "building mero-release"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release)
info "making $n keyless bundles"
fx="$work/fx"
(cd "$repo" && MERO_SIGN_FIXTURES_DIR="$fx" MERO_SIGN_FIXTURES_COUNT="$n" go test -count=1 -run '^TestWriteFixtures$' ./pipeline/sign/ >/dev/null)
identity=$(cat "$fx/identity")
issuer=$(cat "$fx/issuer")
root="$fx/trusted_root.json"

seconds() { # run "$@" and print its wall time in seconds
  local t
  t=$( { TIMEFORMAT=%R; time "$@" >/dev/null 2>&1; } 2>&1 )
  echo "$t"
}

info "in one process: go test -bench BenchmarkVerifyBundles"
per_us=$(cd "$repo" && go test -run '^$' -bench '^BenchmarkVerifyBundles$' -benchtime 5x ./pipeline/sign/ | awk '/BenchmarkVerifyBundles/ { for (i = 1; i <= NF; i++) if ($(i) == "µs/bundle") print $(i - 1) }')
[ -n "$per_us" ] || die "benchmark produced no result"

verify_ours() {
  for f in "$fx"/keyless/artifact-[0-9][0-9][0-9].json; do
    "$work/mero-release" verify --bundle "$f.sigstore.json" --certificate-identity "$identity" \
      --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$f" || return 1
  done
}
verify_cosign() {
  for f in "$fx"/keyless/artifact-[0-9][0-9][0-9].json; do
    "$cosign" verify-blob --bundle "$f.sigstore.json" --certificate-identity "$identity" \
      --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$f" || return 1
  done
}
verify_ours >/dev/null 2>&1 || die "mero-release verify failed on a fixture"
verify_cosign >/dev/null 2>&1 || die "cosign verify-blob failed on a fixture"
info "$n mero-release verify processes"
ours=$(seconds verify_ours)
info "$n cosign verify-blob processes"
theirs=$(seconds verify_cosign)

printf '\n%s keyless bundles, %s CPUs\n\n' "$n" "$(nproc)"
printf '| %-42s | %10s | %15s |\n' method "total (s)" "per bundle (ms)"
printf '|%s|%s|%s|\n' "--------------------------------------------" "------------" "-----------------"
awk -v u="$per_us" -v n="$n" 'BEGIN { printf "| %-42s | %10.3f | %15.2f |\n", "sign.Verifier, one process (Go benchmark)", u * n / 1e6, u / 1000 }'
awk -v t="$ours" -v n="$n" 'BEGIN { printf "| %-42s | %10.3f | %15.2f |\n", n " x mero-release verify", t, t * 1000 / n }'
awk -v t="$theirs" -v n="$n" 'BEGIN { printf "| %-42s | %10.3f | %15.2f |\n", n " x cosign verify-blob", t, t * 1000 / n }'
