#!/usr/bin/env bash
# dagger-smoke.sh — call every function of the mero-release Dagger module on a real engine, on test
# inputs, and check each passes or fails as it must (a failing guard must fail with its message).
# Needs a reachable engine (scripts/ci/dagger-engine.sh start) and a static CLI at $CLI.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
CLI=${CLI:-bin/ci/mero-release}
KMS_BIN=${KMS_BIN:-bin/ci/mero-kms}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

dcall() { timeout 900 dagger call --progress=plain --cli="$CLI" "$@"; }

# expect_pass NAME ARGS… — the call must succeed.
expect_pass() {
  local name=$1; shift
  if dcall "$@" >"$work/out" 2>&1; then
    echo "[PASS] dagger call $name"; passed=$((passed + 1))
  else
    echo "[FAIL] dagger call $name should succeed:"; tail -25 "$work/out"; failed=$((failed + 1))
  fi
}

# expect_fail NAME REGEX ARGS… — the call must fail and its output must match REGEX.
expect_fail() {
  local name=$1 pattern=$2; shift 2
  if dcall "$@" >"$work/out" 2>&1; then
    echo "[FAIL] dagger call $name should fail but succeeded"; tail -10 "$work/out"; failed=$((failed + 1))
  elif grep -Eq -- "$pattern" "$work/out"; then
    echo "[PASS] dagger call $name fails as it must: $(grep -Em1 -- "$pattern" "$work/out" | sed 's/^[[:space:]]*//' | cut -c1-160)"
    passed=$((passed + 1))
  else
    echo "[FAIL] dagger call $name failed without /$pattern/:"; tail -25 "$work/out"; failed=$((failed + 1))
  fi
}

# expect_file NAME REGEX ARGS… — the call exports a file whose content matches REGEX.
expect_file() {
  local name=$1 pattern=$2; shift 2
  local out="$work/$name.out"
  if dcall "$@" export --path "$out" >"$work/out" 2>&1 && grep -Eq -- "$pattern" "$out"; then
    echo "[PASS] dagger call $name exported a file matching /$pattern/"; passed=$((passed + 1))
  else
    echo "[FAIL] dagger call $name: no exported file matching /$pattern/:"; tail -25 "$work/out"; [ -f "$out" ] && head -20 "$out"
    failed=$((failed + 1))
  fi
}

if timeout 600 dagger functions >"$work/functions" 2>&1; then
  sed -n '/^Name/,$p' "$work/functions"
  missing=0
  for f in guard-version-sync guard-allowed-env guard-pr-docs guard-dependency catalog-validate catalog-add catalog-query \
           policy-generate policy-validate policy-promote release-kms release-node-image audit end-to-end sbom sbom-dir \
           checksums verify-checksums sign verify notes measure-kms measure-node parse-quote; do
    grep -q "^$f " "$work/functions" || { echo "[FAIL] dagger functions does not list $f"; missing=1; }
  done
  [ $missing = 0 ] && { echo "[PASS] dagger functions lists every function"; passed=$((passed + 1)); } || failed=$((failed + 1))
else
  echo "[FAIL] dagger functions:"; tail -25 "$work/functions"; failed=$((failed + 1))
fi

td=scripts/ci/testdata
expect_pass guard-version-sync guard-version-sync --tag mero-kms-v1.3.0 --version 1.3.0
expect_fail guard-version-sync/mismatch 'mero-kms-v1.3.0.*1\.2\.0|1\.2\.0.*1\.3\.0' guard-version-sync --tag mero-kms-v1.3.0 --version 1.2.0
expect_fail guard-version-sync/malformed 'exit code 2' guard-version-sync --tag mero-kms-1.3 --version 1.3.0
expect_pass guard-allowed-env guard-allowed-env --workflows "$td/workflows-clean"
expect_fail guard-allowed-env/hit 'release\.yaml:[0-9]+.*ALLOWED_MRTD' guard-allowed-env --workflows "$td/workflows-allowed"
expect_pass guard-pr-docs guard-pr-docs --changed policies/attestation-policy-debug.json,docs/policies.md
expect_fail guard-pr-docs/no-docs 'attestation-policy-debug\.json' guard-pr-docs --changed policies/attestation-policy-debug.json
expect_pass guard-dependency guard-dependency --tag mero-kms-v1.2.0 --counterpart 1.2.0 --store "$td/store" --policies "$td/policies-ready"
expect_fail guard-dependency/no-counterpart 'mero-tee-v9\.9\.9' guard-dependency --tag mero-kms-v1.2.0 --counterpart 9.9.9 --store "$td/store"
expect_pass catalog-validate catalog-validate
expect_fail catalog-validate/bad 'tested' catalog-validate --catalog "$td/catalog-missing-tested.json"
expect_file catalog-add '"kms": "1\.3\.0"' catalog-add --kms 1.3.0 --node 1.3.0 --notes "smoke test"
expect_pass catalog-query catalog-query --kms 1.2.0
expect_pass policy-validate policy-validate
expect_fail policy-validate/stable 'policy_not_ready' policy-validate --stable
expect_file policy-generate '"allowed_mrtd": \[' policy-generate --kms-version 1.2.0 --profile debug --measurements "$td/store/mero-tee-v1.2.0/assets/published-mrtds.json"
expect_file policy-promote '"kms_version": "1\.2\.0"' policy-promote --policy policies/attestation-policy-debug.json --measurements "$td/store/mero-tee-v1.2.0/assets/published-mrtds.json"

# the release pipelines, on a local store the calls hand back as a directory
expect_file release-node-image '"published"|mero-tee-v1\.3\.0-rc\.1' release-node-image --tag mero-tee-v1.3.0-rc.1 --version 1.3.0-rc.1 \
  file --path releases/mero-tee-v1.3.0-rc.1/release.json
if dcall release-node-image --tag mero-tee-v1.3.0-rc.1 --version 1.3.0-rc.1 export --path "$work/node-state" >"$work/out" 2>&1; then
  expect_pass audit/node audit --tag mero-tee-v1.3.0-rc.1 --store "$work/node-state"
  expect_file measure-node '"source": "tdx-simulator"' measure-node --version 1.3.0-rc.1
  expect_pass verify-checksums verify-checksums --assets "$work/node-state/releases/mero-tee-v1.3.0-rc.1/assets"
  expect_pass verify verify --file "$work/node-state/releases/mero-tee-v1.3.0-rc.1/assets/published-mrtds.json" \
    --bundle "$work/node-state/releases/mero-tee-v1.3.0-rc.1/assets/published-mrtds.json.sigstore.json" --key "$work/node-state/work/keys/cosign.pub"
  printf '{"flipped": true}\n' > "$work/node-state/releases/mero-tee-v1.3.0-rc.1/assets/published-mrtds.json"
  expect_fail audit/tampered 'exit code 10|checksum|digest' audit --tag mero-tee-v1.3.0-rc.1 --store "$work/node-state"
else
  echo "[FAIL] dagger call release-node-image export:"; tail -25 "$work/out"; failed=$((failed + 1))
fi
if dcall release-kms --tag mero-kms-v1.3.0-rc.1 --version 1.3.0-rc.1 --kms-binary "$KMS_BIN" export --path "$work/kms-state" >"$work/out" 2>&1; then
  echo "[PASS] dagger call release-kms (rc, fresh store)"; passed=$((passed + 1))
  expect_pass audit/kms audit --tag mero-kms-v1.3.0-rc.1 --store "$work/kms-state"
else
  echo "[FAIL] dagger call release-kms:"; tail -25 "$work/out"; failed=$((failed + 1))
fi
expect_fail release-kms/stable-not-ready 'policy_not_ready' release-kms --tag mero-kms-v1.3.0 --version 1.3.0 --kms-binary "$KMS_BIN"
expect_fail release-kms/version-sync 'MERO_KMS_VERSION=1\.2\.0' release-kms --tag mero-kms-v1.3.0-rc.1 --version 1.2.0 --kms-binary "$KMS_BIN"

echo "dagger: $passed passed, $failed failed"
[ "$failed" = 0 ]
