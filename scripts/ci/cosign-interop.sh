#!/usr/bin/env bash
# cosign interoperability check (SPEC §5: `cosign verify-blob --bundle ...` must verify our bundles).
#
# Runs the real cosign CLI against bundles made by mero-release, and the reverse:
#   1. keyless bundles (Fulcio certificate with SCT, Rekor entry) from the in-process Sigstore
#      of pipeline/sign/signtest, verified by `cosign verify-blob --certificate-identity
#      --certificate-oidc-issuer --trusted-root` with no --insecure-* flag;
#   2. a cosign-format key-pair bundle with a Rekor entry, verified by `cosign verify-blob --key`;
#   3. a key pair made by `cosign generate-key-pair`, used by `mero-release sign --key`
#      (air-gapped, no Rekor entry: cosign needs --insecure-ignore-tlog for that);
#   4. a bundle made by `cosign sign-blob --new-bundle-format`, verified by `mero-release verify`;
#   5. release provenance (provenance.intoto.sigstore.json, SLSA v1 in a DSSE bundle): of a
#      key-signed release made by `mero-release release-local`, and keyless from the in-process
#      Sigstore, verified by `cosign verify-blob-attestation --new-bundle-format --type
#      slsaprovenance1` against a subject file, and by `mero-release verify --bundle`;
#   6. KMS-style images pushed to a loopback registry (scripts/ci/registry, started and killed
#      by PID) and signed and attested by mero-release (pipeline/imagesign, with a key and
#      keyless): `cosign verify` and `cosign verify-attestation --type slsaprovenance1 / spdxjson`
#      read both the cosign tag scheme (.sig/.att) and the Sigstore-bundle referrers
#      (--new-bundle-format), and `mero-release verify-image` accepts the same images;
# and checks that tampered files, wrong identities, wrong keys and unsigned images are
# rejected by both.
#
# cosign is installed once into $COSIGN_CACHE (default /var/cache/mero-release/bin) with
# `go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.1` (about 6.5 minutes cold on
# 2 cores) and reused while it is there. Log lines: [INFO]/[PASS]/[FAIL]/[ERROR].
# Exit codes: 0 all checks passed, 10 a check failed, 1 the check could not run.
set -euo pipefail

COSIGN_VERSION=v2.6.1
cache=${COSIGN_CACHE:-/var/cache/mero-release/bin}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

info() { echo "[INFO] $*"; }
pass() { echo "[PASS] $*"; }
failed=0
failure() { echo "[FAIL] $*"; failed=$((failed + 1)); }
die() { echo "[ERROR] $*" >&2; exit 1; }

# expect_ok NAME CMD... / expect_fail NAME CMD...: run a check and log its outcome.
expect_ok() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else failure "$name: $(tail -3 <<<"$out" | tr '\n' ' ')"; fi
}
expect_fail() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then failure "$name: accepted, must be rejected"; else pass "$name (rejected: $(tail -1 <<<"$out" | cut -c1-160))"; fi
}

# --- cosign, installed once -------------------------------------------------------------
cosign="$cache/cosign"
if [ -x "$cosign" ] && "$cosign" version 2>/dev/null | grep -q "GitVersion: *$COSIGN_VERSION\$"; then
  info "using cached cosign $COSIGN_VERSION at $cosign"
else
  info "installing cosign $COSIGN_VERSION into $cache (one-time, several minutes)"
  mkdir -p "$cache" || die "cannot create $cache (set COSIGN_CACHE)"
  GOBIN="$cache" go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION" || die "go install cosign failed"
fi
"$cosign" version 2>/dev/null | grep -q "GitVersion: *$COSIGN_VERSION\$" || die "$cosign is not cosign $COSIGN_VERSION"

work=$(mktemp -d "${TMPDIR:-/tmp}/cosign-interop.XXXXXX")
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# cosign must not reach the network: no TUF, no public Sigstore.
export TUF_ROOT="$work/tuf"

info "building mero-release"
(cd "$repo" && go build -o "$work/mero-release" ./cmd/mero-release) || die "build failed"
mr="$work/mero-release"

info "making keyless and key-pair bundles with the in-process Sigstore (pipeline/sign/signtest)"
fx="$work/fixtures"
(cd "$repo" && MERO_SIGN_FIXTURES_DIR="$fx" MERO_SIGN_FIXTURES_COUNT=1 go test -count=1 -run '^TestWriteFixtures$' ./pipeline/sign/ >"$work/fixtures.log" 2>&1) ||
  { cat "$work/fixtures.log"; die "fixture generation failed"; }
identity=$(cat "$fx/identity")
issuer=$(cat "$fx/issuer")
root="$fx/trusted_root.json"
art="$fx/keyless/artifact-000.json"
info "certificate identity $identity, issuer $issuer"

# --- 1. keyless ------------------------------------------------------------------------
expect_ok "cosign verify-blob: keyless bundle (identity, issuer, SCT, Rekor entry)" \
  "$cosign" verify-blob --bundle "$art.sigstore.json" --certificate-identity "$identity" \
  --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"
expect_ok "cosign verify-blob: keyless bundle, identity regexp" \
  "$cosign" verify-blob --bundle "$art.sigstore.json" --certificate-identity-regexp '^https://github\.com/calimero-network/mero-tee/\.github/workflows/release-kms-phala\.yaml@refs/tags/' \
  --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"
cp "$art" "$work/tampered.json" && printf ' ' >>"$work/tampered.json"
expect_fail "cosign verify-blob: keyless bundle, tampered file" \
  "$cosign" verify-blob --bundle "$art.sigstore.json" --certificate-identity "$identity" \
  --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$work/tampered.json"
expect_fail "cosign verify-blob: keyless bundle, wrong identity" \
  "$cosign" verify-blob --bundle "$art.sigstore.json" --certificate-identity "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0" \
  --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"
expect_fail "cosign verify-blob: keyless bundle, wrong issuer" \
  "$cosign" verify-blob --bundle "$art.sigstore.json" --certificate-identity "$identity" \
  --certificate-oidc-issuer "https://accounts.google.com" --trusted-root "$root" "$art"
expect_ok "mero-release verify: same keyless bundle" \
  "$mr" verify --bundle "$art.sigstore.json" --certificate-identity "$identity" --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"

# --- 2. key pair with a Rekor entry ----------------------------------------------------
kart="$fx/key/artifact.json"
expect_ok "cosign verify-blob --key: key-pair bundle with Rekor entry" \
  "$cosign" verify-blob --key "$fx/key/cosign.pub" --bundle "$kart.sigstore.json" --trusted-root "$root" "$kart"
cp "$kart" "$work/ktampered.json" && printf ' ' >>"$work/ktampered.json"
expect_fail "cosign verify-blob --key: tampered file" \
  "$cosign" verify-blob --key "$fx/key/cosign.pub" --bundle "$kart.sigstore.json" --trusted-root "$root" "$work/ktampered.json"

# --- 3. cosign-generated key, mero-release signs ---------------------------------------
mkdir -p "$work/cg"
(cd "$work/cg" && COSIGN_PASSWORD=interop "$cosign" generate-key-pair --output-key-prefix cosign >/dev/null 2>&1) || die "cosign generate-key-pair failed"
printf '{"allowed_tcb_status":["UpToDate"]}\n' >"$work/policy.json"
expect_ok "mero-release sign --key with a cosign-generated key" \
  env COSIGN_PASSWORD=interop "$mr" sign --key "$work/cg/cosign.key" "$work/policy.json"
expect_ok "cosign verify-blob --key: mero-release key bundle (no Rekor entry)" \
  "$cosign" verify-blob --key "$work/cg/cosign.pub" --bundle "$work/policy.json.sigstore.json" --trusted-root "$root" --insecure-ignore-tlog "$work/policy.json"
expect_fail "cosign verify-blob --key: another key" \
  "$cosign" verify-blob --key "$fx/key/cosign.pub" --bundle "$work/policy.json.sigstore.json" --trusted-root "$root" --insecure-ignore-tlog "$work/policy.json"

# --- 4. cosign signs, mero-release verifies --------------------------------------------
printf 'release notes\n' >"$work/notes.md"
if COSIGN_PASSWORD=interop "$cosign" sign-blob --yes --key "$work/cg/cosign.key" --new-bundle-format --tlog-upload=false \
  --bundle "$work/notes.md.sigstore.json" "$work/notes.md" >"$work/sign-blob.log" 2>&1; then
  expect_ok "mero-release verify --key: bundle made by cosign sign-blob" \
    "$mr" verify --key "$work/cg/cosign.pub" "$work/notes.md"
  printf 'x' >>"$work/notes.md"
  expect_fail "mero-release verify --key: cosign bundle, tampered file" \
    "$mr" verify --key "$work/cg/cosign.pub" "$work/notes.md"
else
  failure "cosign sign-blob --new-bundle-format: $(tail -2 "$work/sign-blob.log" | tr '\n' ' ')"
fi

# --- 5. SLSA provenance (DSSE attestation bundles) --------------------------------------
# cosign needs a trusted root with --new-bundle-format even for --key (no TUF here): the
# in-process one serves; a key bundle without a Rekor entry needs --insecure-ignore-tlog.
info "making a key-signed release with mero-release release-local (its provenance is checked)"
rl="$work/release-local"
if (cd "$repo" && "$mr" release-local --store "dir:$rl/releases" --work "$rl/work") >"$work/release-local.log" 2>&1; then
  for tag in mero-kms-v1.3.0-rc.1 mero-tee-v1.3.0-rc.1; do
    assets="$rl/releases/$tag/assets"
    prov="$assets/provenance.intoto.sigstore.json"
    expect_ok "cosign verify-blob-attestation --key: $tag provenance covers sbom.spdx.json" \
      "$cosign" verify-blob-attestation --bundle "$prov" --new-bundle-format --type slsaprovenance1 \
      --key "$rl/work/keys/cosign.pub" --trusted-root "$root" --insecure-ignore-tlog "$assets/sbom.spdx.json"
    expect_ok "cosign verify-blob-attestation --key: $tag provenance covers published-mrtds.json" \
      "$cosign" verify-blob-attestation --bundle "$prov" --new-bundle-format --type slsaprovenance1 \
      --key "$rl/work/keys/cosign.pub" --trusted-root "$root" --insecure-ignore-tlog "$assets/published-mrtds.json"
    content=()
    for f in "$assets"/*; do
      case $f in *.sigstore.json | */checksums.sha256) ;; *) content+=("$f") ;; esac
    done
    expect_ok "mero-release verify --bundle: $tag provenance, every content asset (${#content[@]})" \
      "$mr" verify --key "$rl/work/keys/cosign.pub" --type slsaprovenance1 --bundle "$prov" "${content[@]}"
    cp "$assets/sbom.spdx.json" "$work/sbom-tampered.json" && printf ' ' >>"$work/sbom-tampered.json"
    expect_fail "cosign verify-blob-attestation --key: $tag provenance, tampered subject file" \
      "$cosign" verify-blob-attestation --bundle "$prov" --new-bundle-format --type slsaprovenance1 \
      --key "$rl/work/keys/cosign.pub" --trusted-root "$root" --insecure-ignore-tlog "$work/sbom-tampered.json"
    expect_fail "cosign verify-blob-attestation --key: $tag provenance, another key" \
      "$cosign" verify-blob-attestation --bundle "$prov" --new-bundle-format --type slsaprovenance1 \
      --key "$fx/key/cosign.pub" --trusted-root "$root" --insecure-ignore-tlog "$assets/sbom.spdx.json"
  done
  # a tampered statement: the DSSE payload's subject digest rewritten, signature kept
  prov="$rl/releases/mero-kms-v1.3.0-rc.1/assets/provenance.intoto.sigstore.json"
  sbom="$rl/releases/mero-kms-v1.3.0-rc.1/assets/sbom.spdx.json"
  tampered_sum=$(sha256sum "$work/sbom-tampered.json" | cut -d' ' -f1)
  real_sum=$(sha256sum "$sbom" | cut -d' ' -f1)
  (cd "$repo" && go run ./scripts/ci/internal/dssepayload "$prov" "$real_sum" "$tampered_sum") >"$work/prov-tampered.intoto.sigstore.json" ||
    die "cannot rewrite the provenance payload"
  expect_fail "cosign verify-blob-attestation --key: tampered provenance statement" \
    "$cosign" verify-blob-attestation --bundle "$work/prov-tampered.intoto.sigstore.json" --new-bundle-format --type slsaprovenance1 \
    --key "$rl/work/keys/cosign.pub" --trusted-root "$root" --insecure-ignore-tlog "$work/sbom-tampered.json"
  expect_fail "mero-release verify --bundle: tampered provenance statement" \
    "$mr" verify --key "$rl/work/keys/cosign.pub" --bundle "$work/prov-tampered.intoto.sigstore.json" "$work/sbom-tampered.json"
else
  failure "mero-release release-local: $(tail -3 "$work/release-local.log" | tr '\n' ' ')"
fi

kprov="$fx/keyless/provenance.intoto.sigstore.json"
expect_ok "cosign verify-blob-attestation: keyless provenance (identity, issuer, SCT, Rekor dsse entry)" \
  "$cosign" verify-blob-attestation --bundle "$kprov" --new-bundle-format --type slsaprovenance1 \
  --certificate-identity "$identity" --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"
expect_fail "cosign verify-blob-attestation: keyless provenance, file not a subject" \
  "$cosign" verify-blob-attestation --bundle "$kprov" --new-bundle-format --type slsaprovenance1 \
  --certificate-identity "$identity" --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$work/tampered.json"
expect_fail "cosign verify-blob-attestation: keyless provenance, wrong identity" \
  "$cosign" verify-blob-attestation --bundle "$kprov" --new-bundle-format --type slsaprovenance1 \
  --certificate-identity "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0" \
  --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"
expect_ok "cosign verify-blob-attestation --key: key provenance with a Rekor dsse entry" \
  "$cosign" verify-blob-attestation --bundle "$fx/key/provenance.intoto.sigstore.json" --new-bundle-format --type slsaprovenance1 \
  --key "$fx/key/cosign.pub" --trusted-root "$root" "$kart"
expect_ok "mero-release verify --bundle: same keyless provenance" \
  "$mr" verify --bundle "$kprov" --type slsaprovenance1 --certificate-identity "$identity" --certificate-oidc-issuer "$issuer" --trusted-root "$root" "$art"
# --- 6. images in a loopback registry ----------------------------------------------------
info "starting a loopback registry (scripts/ci/registry)"
(cd "$repo" && go build -o "$work/registry" ./scripts/ci/registry) || die "registry build failed"
"$work/registry" -addr-file "$work/registry.addr" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/registry.addr" ] && break
  sleep 0.1
done
[ -s "$work/registry.addr" ] || die "the registry did not start: $(cat "$work/registry.log")"
host=$(cat "$work/registry.addr")
info "registry on $host (pid $registry_pid); pushing, signing and attesting images"
ifx="$work/image-fixtures"
(cd "$repo" && MERO_IMAGESIGN_REGISTRY="$host" MERO_IMAGESIGN_FIXTURES_DIR="$ifx" go test -count=1 -run '^TestWriteImageFixtures$' ./pipeline/imagesign/ >"$work/image-fixtures.log" 2>&1) ||
  { cat "$work/image-fixtures.log"; die "image fixture generation failed"; }
kref=$(cat "$ifx/key.ref")
lref=$(cat "$ifx/keyless.ref")
uref=$(cat "$ifx/unsigned.ref")
iroot="$ifx/trusted_root.json"
iid=$(cat "$ifx/identity")
iiss=$(cat "$ifx/issuer")
kpub="$ifx/key/cosign.pub"
http=(--allow-http-registry --trusted-root "$iroot")
keyless=(--certificate-identity "$iid" --certificate-oidc-issuer "$iiss")

# key-signed image (no Rekor entry: --insecure-ignore-tlog)
expect_ok "cosign verify --key: image signature (.sig tag)" \
  "$cosign" verify "${http[@]}" --key "$kpub" --insecure-ignore-tlog "$kref"
expect_ok "cosign verify --key --new-bundle-format: image signature (referrer bundle)" \
  "$cosign" verify "${http[@]}" --key "$kpub" --insecure-ignore-tlog --new-bundle-format "$kref"
for type in slsaprovenance1 spdxjson; do
  expect_ok "cosign verify-attestation --key --type $type (.att tag)" \
    "$cosign" verify-attestation "${http[@]}" --key "$kpub" --insecure-ignore-tlog --type "$type" "$kref"
  expect_ok "cosign verify-attestation --key --type $type --new-bundle-format (referrer bundle)" \
    "$cosign" verify-attestation "${http[@]}" --key "$kpub" --insecure-ignore-tlog --new-bundle-format --type "$type" "$kref"
done
expect_fail "cosign verify --key: another key" \
  "$cosign" verify "${http[@]}" --key "$work/cg/cosign.pub" --insecure-ignore-tlog "$kref"
expect_fail "cosign verify-attestation --key --new-bundle-format: another key" \
  "$cosign" verify-attestation "${http[@]}" --key "$work/cg/cosign.pub" --insecure-ignore-tlog --new-bundle-format --type slsaprovenance1 "$kref"
expect_fail "cosign verify --key: unsigned image" \
  "$cosign" verify "${http[@]}" --key "$kpub" --insecure-ignore-tlog "$uref"
expect_ok "mero-release verify-image --key" "$mr" verify-image --key "$kpub" "$kref"
expect_fail "mero-release verify-image --key: another key" "$mr" verify-image --key "$work/cg/cosign.pub" "$kref"
expect_fail "mero-release verify-image --key: unsigned image" "$mr" verify-image --key "$kpub" "$uref"

# keyless image (Fulcio certificate with SCT, Rekor entries); cosign v2.6.1 reads keyless
# attestations with --trusted-root only from the bundles (--new-bundle-format)
expect_ok "cosign verify: keyless image signature (.sig tag: certificate, Rekor SET)" \
  "$cosign" verify "${http[@]}" "${keyless[@]}" "$lref"
expect_ok "cosign verify --new-bundle-format: keyless image signature (referrer bundle)" \
  "$cosign" verify "${http[@]}" "${keyless[@]}" --new-bundle-format "$lref"
for type in slsaprovenance1 spdxjson; do
  expect_ok "cosign verify-attestation --new-bundle-format --type $type: keyless (referrer bundle)" \
    "$cosign" verify-attestation "${http[@]}" "${keyless[@]}" --new-bundle-format --type "$type" "$lref"
done
expect_fail "cosign verify: keyless image, wrong identity" \
  "$cosign" verify "${http[@]}" --certificate-identity "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0" \
  --certificate-oidc-issuer "$iiss" "$lref"
expect_fail "cosign verify-attestation --new-bundle-format: keyless image, wrong identity" \
  "$cosign" verify-attestation "${http[@]}" --certificate-identity "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0" \
  --certificate-oidc-issuer "$iiss" --new-bundle-format --type slsaprovenance1 "$lref"
expect_ok "mero-release verify-image: keyless" "$mr" verify-image "${keyless[@]}" --trusted-root "$iroot" "$lref"
expect_fail "mero-release verify-image: keyless, wrong identity" \
  "$mr" verify-image --certificate-identity "https://github.com/evil/fork/.github/workflows/x.yaml@refs/heads/main" --certificate-oidc-issuer "$iiss" --trusted-root "$iroot" "$lref"

kill "$registry_pid" 2>/dev/null || true
wait "$registry_pid" 2>/dev/null || true
registry_pid=

if [ "$failed" -gt 0 ]; then
  echo "[FAIL] cosign interoperability: $failed check(s) failed"
  exit 10
fi
pass "cosign interoperability: all checks passed"
