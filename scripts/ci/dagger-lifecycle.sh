#!/usr/bin/env bash
# dagger-lifecycle.sh — the whole promotion path (SPEC §1, §5) through the Dagger functions, as
# `mero-release release-local --lifecycle` runs it with the CLI: node and KMS 1.3.0-rc.1 → node and
# KMS 1.3.0 → a node-image hotfix 1.3.1 whose measurements changed (E2E against candidate KMS
# policies) → the KMS hotfix 1.3.1 with the updated policies, each call taking the previous call's
# state (one store, one catalog). The release calls are the workflows' `dagger call` lines with
# the local defaults instead of GitHub, GCP and keyless signing (pipeline/lifecycle's test compares
# them); the release notes come from the notes convention, release-notes/<tag>.md of --history.
#
# Results are judged from exported state only — release.json, report.json, the catalog, the
# auditor's exit code — never from log text: the engine caches execs, and a cached exec prints
# nothing. Needs a reachable engine (scripts/ci/dagger-engine.sh start) and the static CLI and
# KMS binaries at $CLI and $KMS_BIN (as dagger-smoke.sh).
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
CLI=${CLI:-bin/ci/mero-release}
KMS_BIN=${KMS_BIN:-bin/ci/mero-kms}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
history=$work/history
profiles="debug debug-read-only locked-read-only"
passed=0 failed=0
pass() { echo "[PASS] $*"; passed=$((passed + 1)); }
fail() { echo "[FAIL] $*"; failed=$((failed + 1)); }

# Each call is bounded: a hung call fails the run instead of eating CI's time.
dcall() { timeout "${DAGGER_CALL_TIMEOUT:-900}" dagger call --progress=plain --cli="$CLI" "$@"; }

# field FILE NAME — the value of a top-level boolean or string field of a JSON file, as written
# by the CLI (one field per line).
field() { sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -1; }

# The vulnerability gate's database comes as in the workflows (--vuln-db-update): downloaded from a
# listing by grype's client. Here the listing is a mirror (mero-release vulndb mirror) of a
# database built from the repository's advisory list, served on loopback and handed to the engine
# as a service.
# shellcheck source=scripts/ci/vulndb-listing.sh
. "$repo/scripts/ci/vulndb-listing.sh"
trap 'stop_vulndb_listing; rm -rf "$work"' EXIT
if ! serve_vulndb_listing "$work"; then
  fail "no vulnerability database listing on loopback"
  echo "dagger lifecycle: $passed passed, $failed failed"; exit 1
fi
listing="tcp://127.0.0.1:$listing_port"

prev=""
stable_tags=()
for step in 0 1 2 3 4 5; do
  if ! line=$("$CLI" lifecycle prepare --history "$history" --step "$step" 2>"$work/prepare.err"); then
    fail "lifecycle prepare --step $step:"; cat "$work/prepare.err"; break
  fi
  read -r fn tag version image <<<"$line"
  next=$work/state$((step + 1))
  state_args=()
  [ -n "$prev" ] && state_args=(--state "$prev")
  case $fn in
    release-node-image)
      image_args=()
      if [ "$image" != - ]; then
        for p in $profiles; do image_args+=(--image "$p=$image"); done
      fi
      dcall release-node-image --tag "$tag" --version "$version" "${state_args[@]}" --history "$history" "${image_args[@]}" \
        --vuln-db-update --vuln-db-listing "$listing" \
        export --path "$next" >"$work/out" 2>&1
      ;;
    release-kms)
      dcall release-kms --tag "$tag" --version "$version" "${state_args[@]}" --history "$history" --kms-binary "$KMS_BIN" \
        --vuln-db-update --vuln-db-listing "$listing" \
        export --path "$next" >"$work/out" 2>&1
      ;;
    *) fail "lifecycle prepare --step $step printed an unknown function: $line"; break ;;
  esac
  rc=$?
  rel=$next/releases/$tag/release.json
  report=$next/work/$tag/report.json
  want_pre=false
  case $version in *-rc.*) want_pre=true ;; esac
  if [ $rc = 0 ] && [ -f "$rel" ] && [ "$(field "$rel" draft)" = false ] && [ "$(field "$rel" prerelease)" = "$want_pre" ] \
     && [ -f "$report" ] && "$CLI" audit --tag "$tag" --store "dir:$next/releases" --key "$next/work/keys/cosign.pub" >"$work/audit" 2>&1; then
    pass "dagger call $fn $tag: published (prerelease $want_pre, class $(field "$report" class)) and audited"
  else
    fail "dagger call $fn $tag (exit $rc):"; tail -25 "$work/out"; [ -f "$work/audit" ] && tail -5 "$work/audit"
    break
  fi
  [ "$want_pre" = false ] && stable_tags+=("$tag")
  prev=$next
done

if [ "${#stable_tags[@]}" = 4 ]; then
  final=$prev
  # every stable and hotfix release is in the one store, and the auditor passes each through Dagger
  for tag in "${stable_tags[@]}"; do
    if dcall audit --tag "$tag" --store "$final" --key "$final/work/keys/cosign.pub" >"$work/out" 2>&1; then
      pass "dagger call audit $tag"
    else
      fail "dagger call audit $tag:"; tail -15 "$work/out"
    fi
  done
  # every stable and hotfix release scanned with the database downloaded from the listing (the
  # mounted --vuln-db), not with the repository's advisory list
  for tag in "${stable_tags[@]}"; do
    v=$final/releases/$tag/assets/vulnerabilities.json
    if grep -q '"source": "/in/vuln-db"' "$v" 2>/dev/null; then
      pass "$tag scanned with the downloaded vulnerability database"
    else
      fail "$tag did not scan with the downloaded vulnerability database: $(grep -m1 '"source"' "$v" 2>&1)"
    fi
  done
  # the node hotfix names the KMS release that must follow; the catalog lists the tested pairs,
  # not the node hotfix with the KMS policy that refuses it
  if grep -q '"follow_up": ".*mero-kms-v1\.3\.1' "$final/work/mero-tee-v1.3.1/report.json"; then
    pass "mero-tee-v1.3.1 report.json names mero-kms-v1.3.1 as the release that must follow"
  else
    fail "mero-tee-v1.3.1 report.json has no follow-up naming mero-kms-v1.3.1"
  fi
  cat=$final/work/compatibility-catalog.json
  for pair in 1.3.0-rc.1/1.3.0-rc.1 1.3.0/1.3.0 1.3.1/1.3.1; do
    if grep -A1 "\"kms\": \"${pair%/*}\"" "$cat" | grep -q "\"node_image\": \"${pair#*/}\""; then
      pass "the catalog lists kms ${pair%/*} / node ${pair#*/}"
    else
      fail "the catalog does not list kms ${pair%/*} / node ${pair#*/}"
    fi
  done
  if grep -A1 '"kms": "1.3.0"' "$cat" | grep -q '"node_image": "1.3.1"'; then
    fail "the catalog lists kms 1.3.0 / node 1.3.1, which the published 1.3.0 policy refuses"
  else
    pass "the catalog does not list kms 1.3.0 / node 1.3.1"
  fi
fi

echo "dagger lifecycle: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
