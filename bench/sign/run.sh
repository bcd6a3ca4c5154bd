#!/usr/bin/env bash
# 200 keyless Sigstore bundles verified by one `mero-release verify --all DIR` process against
# 200 `cosign verify-blob` processes on the same bundles, interleaved over BENCH_ROUNDS rounds
# (default 5). Goal: cosign's time / ours >= 50 (median). cosign v2.6.1 is taken from
# $COSIGN_CACHE (scripts/ci/cosign-interop.sh installs it there) or installed there once.
# The bundles come from the in-process Sigstore (pipeline/sign/signtest): Fulcio certificate
# with an embedded SCT, Rekor entry with SET and inclusion proof; every check runs offline
# against the matching trusted_root.json. The last line is the ratio (min and median); exit 10
# when the goal is missed.
#
# Usage: bench/sign/run.sh      Env: BENCH_BUNDLES (default 200), BENCH_ROUNDS, COSIGN_CACHE, TMPDIR
set -euo pipefail

n=${BENCH_BUNDLES:-200}
rounds=${BENCH_ROUNDS:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
info() { echo "[INFO] $*" >&2; }
die() { echo "[ERROR] $*" >&2; exit 1; }

bench_cosign

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
export identity issuer root cosign fx

cat >"$work/cosign-all.sh" <<'SH'
for f in "$fx"/keyless/artifact-[0-9][0-9][0-9].json; do
  "$cosign" verify-blob --bundle "$f.sigstore.json" --certificate-identity "$identity" \
    --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$f" || exit 1
done
SH
ours="'$work/mero-release' verify --all '$fx/keyless' --certificate-identity '$identity' --certificate-oidc-issuer '$issuer' --trusted-root '$root'"
theirs="bash '$work/cosign-all.sh'"
bash -c "$ours" >/dev/null 2>&1 || die "mero-release verify --all failed on the fixtures"
bash -c "$theirs" >/dev/null 2>&1 || die "cosign verify-blob failed on a fixture"

printf '\n## %s keyless bundles, %s CPUs\n' "$n" "$(nproc)"
# ratio = cosign / ours: how many times faster one mero-release process is
compare "$rounds" ">=" 50 "$n x cosign verify-blob" "1 x mero-release verify --all" "$theirs" "$ours"
