#!/usr/bin/env bash
# dagger-smoke.sh — call every function of the mero-release Dagger module on a real engine, on test
# inputs, and check each passes or fails as it must (a failing guard must fail with its message).
# Needs a reachable engine (scripts/ci/dagger-engine.sh start) and a static CLI at $CLI.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
CLI=${CLI:-bin/ci/mero-release}
KMS_BIN=${KMS_BIN:-bin/ci/mero-kms}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

# Each call is bounded: a hung call fails the smoke instead of eating CI's time.
dcall() { timeout "${DAGGER_CALL_TIMEOUT:-300}" dagger call --progress=plain --cli="$CLI" "$@"; }

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

# expect_match NAME REGEX ARGS… — the call must succeed and its output must match REGEX.
expect_match() {
  local name=$1 pattern=$2; shift 2
  if dcall "$@" >"$work/out" 2>&1 && grep -Eq -- "$pattern" "$work/out"; then
    echo "[PASS] dagger call $name: $(grep -Em1 -- "$pattern" "$work/out" | sed 's/^[[:space:]]*//' | cut -c1-140)"; passed=$((passed + 1))
  else
    echo "[FAIL] dagger call $name: no output matching /$pattern/:"; tail -25 "$work/out"; failed=$((failed + 1))
  fi
}

# Checks judge what a call produced (exported files, report.json, the store's release record, the
# returned value, the exit), never its log lines: the engine caches a call whose inputs did not
# change, and a cached call prints none of the CLI's log lines (a second CI run on the same
# machine failed that way). A returned string (audit, end-to-end, kms-check, …) is the CLI's
# output as the function returns it, cached or not.

# json_ok FILE EXPR — the JSON file FILE satisfies the Python expression EXPR over `d`; helpers:
# stage(name) is the status of a stage of a report.json, check(id) a check of an e2e-report.json.
json_ok() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
def stage(name):
    return next((s["status"] for s in d.get("stages", []) if s["name"] == name), None)
def stage_detail(name):
    return next((s.get("detail", "") for s in d.get("stages", []) if s["name"] == name), "")
def check(cid):
    return next((c for c in d.get("checks", []) if c["id"] == cid), {})
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# timed NAME CMD… — run CMD and record its wall time in $work/NAME.secs.
timed() {
  local name=$1 t0=$SECONDS rc; shift
  "$@"; rc=$?
  echo $((SECONDS - t0)) >"$work/$name.secs"
  return $rc
}

if timeout 600 dagger functions >"$work/functions" 2>&1; then
  sed -n '/^Name/,$p' "$work/functions"
  missing=0
  for f in guard-version-sync guard-allowed-env guard-pr-docs guard-dependency catalog-validate catalog-add catalog-query \
           policy-generate policy-validate policy-promote release-kms release-node-image audit end-to-end sbom sbom-dir \
           checksums verify-checksums sign verify notes measure-kms measure-node parse-quote kms-image kms-service kms-check \
           migrate-policy migrate-check kms-attestation-config build-node-image publish catalog-pr gcp-sweep; do
    grep -q "^$f " "$work/functions" || { echo "[FAIL] dagger functions does not list $f"; missing=1; }
  done
  [ $missing = 0 ] && { echo "[PASS] dagger functions lists every function"; passed=$((passed + 1)); } || failed=$((failed + 1))
else
  echo "[FAIL] dagger functions:"; tail -25 "$work/functions"; failed=$((failed + 1))
fi

td=scripts/ci/testdata
expect_pass guard-version-sync guard-version-sync --tag mero-kms-v1.3.0 --version 1.3.0
expect_fail guard-version-sync/mismatch '\[FAIL\].*mero-kms-v1\.3\.0.*MERO_KMS_VERSION=1\.2\.0' guard-version-sync --tag mero-kms-v1.3.0 --version 1.2.0
expect_fail guard-version-sync/malformed 'mero-kms-1\.3.*must start with|exit code 2' guard-version-sync --tag mero-kms-1.3 --version 1.3.0
expect_pass guard-allowed-env guard-allowed-env --workflows "$td/workflows-clean"
expect_fail guard-allowed-env/hit '\[FAIL\].*release\.yaml:[0-9]+.*ALLOWED_MRTD' guard-allowed-env --workflows "$td/workflows-allowed"
expect_pass guard-pr-docs guard-pr-docs --changed policies/attestation-policy-debug.json,docs/policies.md
# the PR guard reads the change from the source's git history (go-git): the module's source must carry .git
expect_pass guard-pr-docs/git-range guard-pr-docs --git-range HEAD..HEAD --pr-body x
expect_fail guard-pr-docs/no-docs '\[FAIL\].*attestation-policy-debug\.json' guard-pr-docs --changed policies/attestation-policy-debug.json
expect_pass guard-dependency guard-dependency --tag mero-kms-v1.2.0 --counterpart 1.2.0 --store "$td/store" --policies "$td/policies-ready"
expect_fail guard-dependency/no-counterpart '\[FAIL\].*mero-tee-v9\.9\.9' guard-dependency --tag mero-kms-v1.2.0 --counterpart 9.9.9 --store "$td/store"
expect_pass catalog-validate catalog-validate
expect_fail catalog-validate/bad '\[FAIL\].*tested' catalog-validate --catalog "$td/catalog-missing-tested.json"
expect_file catalog-add '"kms": "1\.3\.0"' catalog-add --kms 1.3.0 --node 1.3.0 --notes "smoke test"
expect_pass catalog-query catalog-query --kms 1.2.0
expect_pass policy-validate policy-validate
expect_fail policy-validate/stable '\[FAIL\].*policy_not_ready' policy-validate --stable
expect_file policy-generate '"allowed_mrtd": \[' policy-generate --kms-version 1.2.0 --profile debug --measurements "$td/store/mero-tee-v1.2.0/assets/published-mrtds.json"
expect_file policy-promote '"kms_version": "1\.2\.0"' policy-promote --policy policies/attestation-policy-debug.json --measurements "$td/store/mero-tee-v1.2.0/assets/published-mrtds.json"

# --- the release pipelines, on a local store the calls hand back as a state directory ---
ns=$work/node-state ks=$work/kms-state
node=mero-tee-v1.3.0-rc.1 kms=mero-kms-v1.3.0-rc.1
if timed node-release dcall release-node-image --tag $node --version 1.3.0-rc.1 --build export --path "$ns" >"$work/out" 2>&1 \
   && [ -f "$ns/releases/$node/assets/published-mrtds.json" ] && [ -f "$ns/work/node-images/$node/locked-read-only.json" ] \
   && json_ok "$ns/work/$node/report.json" 'd["published"] and stage("publish") == "pass" and stage("audit") == "pass" and "fail" not in [s["status"] for s in d["stages"]]'; then
  echo "[PASS] dagger call release-node-image ($node, fresh store) in $(cat "$work/node-release.secs")s"; passed=$((passed + 1))
else
  echo "[FAIL] dagger call release-node-image:"; tail -25 "$work/out"; failed=$((failed + 1))
fi
expect_pass audit/node audit --tag $node --store "$ns" --key "$ns/work/keys/cosign.pub"

# The KMS rc against that node release: images built from examples/kms/Dockerfile (prebuilt
# binary: no registry here), E2E with the KMS binary of the released image as processes.
if timed kms-release dcall release-kms --tag $kms --version 1.3.0-rc.1 --state "$ns" --kms-binary "$KMS_BIN" export --path "$ks" >"$work/out" 2>&1 \
   && json_ok "$ks/work/$kms/report.json" 'd["published"] and stage("build-images") == "pass" and stage("e2e") == "pass" and stage("audit") == "pass"' \
   && json_ok "$ks/work/$kms/e2e-report.json" 'd["passed"] and check("D")["status"] == "pass" and any(c["name"].startswith("kms 1.3.0-rc.1 (debug) ") and c["status"] == "pass" for c in check("D")["cases"])' \
   && [ -f "$ks/work/$kms/images/mero-kms-locked-read-only.oci.tar" ] && [ -f "$ks/releases/$kms/assets/kms-image-manifest.json" ]; then
  echo "[PASS] dagger call release-kms ($kms: Dockerfile images, E2E against the released KMS binary) in $(cat "$work/kms-release.secs")s"; passed=$((passed + 1))
else
  echo "[FAIL] dagger call release-kms:"; grep -E '\[(FAIL|ERROR)\]' "$work/out" | head; tail -25 "$work/out"; failed=$((failed + 1))
fi
expect_pass audit/kms audit --tag $kms --store "$ks" --key "$ks/work/keys/cosign.pub"
# the auditor trusts no signer the audited state brings: without --key (or an identity) it is a usage error
expect_fail audit/no-signer 'no expected signer.*--key' audit --tag $kms --store "$ks"
expect_match audit/kms-json '"passed": true' audit --tag $kms --store "$ks" --key "$ks/work/keys/cosign.pub" --json-report
for tag in $node $kms; do
  if (cd "$ks/releases/$tag/assets" && sha256sum --quiet -c checksums.sha256) >"$work/sha" 2>&1; then
    echo "[PASS] sha256sum -c checksums.sha256 of $tag"; passed=$((passed + 1))
  else
    echo "[FAIL] sha256sum -c of $tag:"; cat "$work/sha"; failed=$((failed + 1))
  fi
done
kassets=$ks/releases/$kms/assets
expect_pass verify-checksums verify-checksums --assets "$kassets"
expect_pass verify verify --file "$kassets/published-mrtds.json" --bundle "$kassets/published-mrtds.json.sigstore.json" --key "$ks/work/keys/cosign.pub"
expect_fail verify/other-file 'exit code 10' verify --file "$kassets/sbom.spdx.json" --bundle "$kassets/published-mrtds.json.sigstore.json" --key "$ks/work/keys/cosign.pub"
expect_match end-to-end 'guardrail D \(measurement consistency\): 6 case\(s\) passed' end-to-end --kms-release $kms --node-release $node --store "$ks" --kms-binary "$KMS_BIN"
expect_match kms-check 'post-migration check of http://kms:8080 \(locked-read-only\) passed' kms-check --kms-version 1.3.0-rc.1 --node-version 1.3.0-rc.1 --profile locked-read-only --store "$ks"
# the service ran the archive the release kept, found by the released digest (not a rebuild): kms-check returns which image it ran
if grep -q 'the KMS service ran the archive the state kept of the released image: .*mero-kms-locked-read-only\.oci\.tar' "$work/out"; then
  echo "[PASS] kms-check ran the released image the state kept"; passed=$((passed + 1))
else
  echo "[FAIL] kms-check: no sign that the kept archive of the released image was run"; failed=$((failed + 1))
fi
expect_match migrate-policy 'MERO_KMS_POLICY_SHA256=' migrate-policy --kms-version 1.3.0-rc.1 --node-version 1.3.0-rc.1 --profile debug --store "$ks"
expect_fail migrate-policy/not-in-catalog 'does not list the pair kms 1\.3\.0-rc\.1 ↔ node image 9\.9\.9' migrate-policy --kms-version 1.3.0-rc.1 --node-version 9.9.9 --profile debug --store "$ks"
expect_fail migrate-check/unreachable 'exit code 10|connection refused' migrate-check --kms-url http://127.0.0.1:9 --profile debug --node-version 1.3.0-rc.1 --kms-version 1.3.0-rc.1 --store "$ks"
expect_file kms-attestation-config 'kms\.example' kms-attestation-config --kms-release $kms --profile locked-read-only --kms-url https://kms.example --store "$ks"

# --- the artifact and measurement functions, on what the releases produced ---
images=$ks/work/$kms/images
expect_file measure-kms '"compose_hash"' measure-kms --version 1.3.0-rc.1 \
  --images "$images/mero-kms-debug.oci.tar,$images/mero-kms-debug-read-only.oci.tar,$images/mero-kms-locked-read-only.oci.tar" \
  --composes "$images/app-compose-debug.json,$images/app-compose-debug-read-only.json,$images/app-compose-locked-read-only.json"
expect_file measure-node '"source": "tdx-simulator"' measure-node --version 1.3.0-rc.1
expect_file build-node-image 'mero\.profile=locked-read-only' build-node-image --tag $node file --path locked-read-only.json
expect_fail build-node-image/gcp-without-key 'gcp-service-account-key is required' build-node-image --tag $node --provider gcp --gcp-project p
expect_file sbom '"spdxVersion": "SPDX-2\.3"' sbom --input "$images/mero-kms-locked-read-only.oci.tar" --kind oci-archive --name mero-kms --version 1.3.0-rc.1 --source-date-epoch 1764547200
expect_file sbom-dir '"spdxVersion": "SPDX-2\.3"' sbom-dir --input examples/node-image --name mero-tee --version 1.3.0-rc.1 --source-date-epoch 1764547200
mkdir -p "$work/files" && printf 'one\n' >"$work/files/a.txt" && printf 'two\n' >"$work/files/b.txt"
expect_file checksums '  a\.txt$' checksums --assets "$work/files"
if dcall sign --assets "$work/files" --key "file:$ks/work/keys/cosign.key" export --path "$work/signed" >"$work/out" 2>&1 \
   && [ -f "$work/signed/a.txt.sigstore.json" ]; then
  echo "[PASS] dagger call sign wrote a bundle per file"; passed=$((passed + 1))
  expect_pass verify/signed verify --file "$work/signed/b.txt" --bundle "$work/signed/b.txt.sigstore.json" --key "$ks/work/keys/cosign.pub"
else
  echo "[FAIL] dagger call sign:"; tail -25 "$work/out"; failed=$((failed + 1))
fi
expect_file notes '^## ' notes --tag $kms --class rc --measurements "$kassets/published-mrtds.json"
"$CLI" tdxsim quote --image examples/node-image --profile debug --report-data 00ff -o "$work/quote.dat" >/dev/null 2>&1
"$CLI" tdxsim root -o "$work/root.pem" >/dev/null 2>&1
expect_match parse-quote '"mrtd"' parse-quote --quote "$work/quote.dat" --verify --trusted-root "$work/root.pem"
printf '\x01' | dd of="$work/quote.dat" bs=1 seek=200 conv=notrunc status=none
expect_fail parse-quote/tampered 'exit code 10' parse-quote --quote "$work/quote.dat" --verify --trusted-root "$work/root.pem"
expect_file kms-image 'oci-layout|index\.json' kms-image --profile debug --version 1.3.0-rc.1 --kms-binary "$KMS_BIN" as-tarball --media-types OCIMediaTypes

# --- publish on its own: the assembled assets into a fresh store, then audited; incomplete: nothing ---
if dcall publish --tag $kms --assets "$ks/work/$kms/assets" export --path "$work/published" >"$work/out" 2>&1; then
  expect_pass publish+audit audit --tag $kms --store "$work/published" --key "$ks/work/keys/cosign.pub"
else
  echo "[FAIL] dagger call publish:"; tail -25 "$work/out"; failed=$((failed + 1))
fi
cp -a "$ks/work/$kms/assets" "$work/partial" && rm "$work/partial/release-notes.md.sigstore.json"
expect_fail publish/incomplete 'exit code 11' publish --tag $kms --assets "$work/partial"
expect_fail catalog-pr/no-token 'github-token is required' catalog-pr --tag $kms --github-repository calimero-network/mero-tee --catalog "$ks/work/compatibility-catalog.json"

# --- the auditor catches a flipped byte (10) and a missing asset (11) ---
cp -a "$ks" "$work/tampered"
printf '\x00' | dd of="$work/tampered/releases/$kms/assets/attestation-policy-debug.json" bs=1 seek=10 conv=notrunc status=none
expect_fail audit/flipped-byte 'exit code 10' audit --tag $kms --store "$work/tampered" --key "$ks/work/keys/cosign.pub"
cp -a "$ks" "$work/incomplete"
rm "$work/incomplete/releases/$kms/assets/sbom.spdx.json"
python3 - "$work/incomplete/releases/$kms/release.json" <<'PY'
import json, sys
p = sys.argv[1]; r = json.load(open(p))
r["assets"] = [a for a in r.get("assets", []) if a.get("name") != "sbom.spdx.json"]
json.dump(r, open(p, "w"), indent=2)
PY
expect_fail audit/missing-asset 'exit code 11' audit --tag $kms --store "$work/incomplete" --key "$ks/work/keys/cosign.pub"

# --- a re-run finds the release published and only re-audits it ---
if timed kms-rerun dcall release-kms --tag $kms --version 1.3.0-rc.1 --state "$ks" --kms-binary "$KMS_BIN" export --path "$work/rerun" >"$work/out" 2>&1 \
   && json_ok "$work/rerun/work/$kms/report.json" 'stage("publish") == "skip" and stage_detail("publish").startswith("already published") and stage("audit") == "pass"' \
   && cmp -s "$ks/releases/$kms/release.json" "$work/rerun/releases/$kms/release.json" \
   && diff -r "$ks/releases/$kms/assets" "$work/rerun/releases/$kms/assets" >/dev/null; then
  echo "[PASS] dagger call release-kms re-run: published release unchanged, only re-audited ($(cat "$work/kms-rerun.secs")s vs $(cat "$work/kms-release.secs")s)"; passed=$((passed + 1))
else
  echo "[FAIL] dagger call release-kms re-run:"; tail -25 "$work/out"; failed=$((failed + 1))
fi

# --- refusals before anything is published ---
# the author's notes convention: release-notes/<tag>.md in the repository, or --author-notes
printf '## Breaking changes\n\nNone.\n\n## Upgrade path\n\nKMS first.\n' >"$work/stable-notes.md"
printf '## Breaking changes\n\nNone.\n' >"$work/partial-notes.md"
expect_fail release-kms/stable-not-ready '\[FAIL\].*policy_not_ready' release-kms --tag mero-kms-v1.3.0 --version 1.3.0 --kms-binary "$KMS_BIN" --author-notes "$work/stable-notes.md"
expect_fail release-kms/stable-no-notes-file 'needs the author.s release notes: write .*release-notes/mero-kms-v1\.3\.0\.md' release-kms --tag mero-kms-v1.3.0 --version 1.3.0 --counterpart 1.3.0-rc.1 --state "$ks" --kms-binary "$KMS_BIN"
expect_fail release-kms/stable-notes 'stage release-notes.*section "Upgrade path" is required for a stable release' release-kms --tag mero-kms-v1.3.0 --version 1.3.0 --counterpart 1.3.0-rc.1 --state "$ks" --kms-binary "$KMS_BIN" --author-notes "$work/partial-notes.md"
expect_fail release-kms/version-sync '\[FAIL\].*MERO_KMS_VERSION=1\.2\.0' release-kms --tag $kms --version 1.2.0 --kms-binary "$KMS_BIN"
[ ! -e "$ks/releases/mero-kms-v1.3.0" ] || { echo "[FAIL] a refused release reached the store"; failed=$((failed + 1)); }

# --- the vulnerability database: downloaded by grype's client from a listing (a mirror on loopback) ---
# shellcheck source=scripts/ci/vulndb-listing.sh
. "$repo/scripts/ci/vulndb-listing.sh"
trap 'stop_vulndb_listing; rm -rf "$work"' EXIT
serve_vulndb_listing "$work"
if dcall vulndb-update --listing "tcp://127.0.0.1:$listing_port" export --path "$work/vulndb-installed" >"$work/out" 2>&1 &&
  "$CLI" vulndb status --dir "$work/vulndb-installed" >/dev/null 2>&1; then
  echo "[PASS] dagger call vulndb-update: the listing's database installed"; passed=$((passed + 1))
else
  echo "[FAIL] dagger call vulndb-update from a listing on loopback:"; tail -25 "$work/out"; failed=$((failed + 1))
fi
stop_vulndb_listing
expect_fail vulndb-update/unreachable 'unable to download listing|connection refused' vulndb-update --listing-url http://127.0.0.1:9/databases
expect_fail release-kms/vuln-db-and-update 'give vuln-db or vuln-db-update, not both' release-kms --tag $kms --version 1.3.0-rc.1 --vuln-db "$work/vulndb" --vuln-db-update

echo "dagger: $passed passed, $failed failed"
[ "$failed" = 0 ]
