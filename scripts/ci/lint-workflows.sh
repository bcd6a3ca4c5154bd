#!/usr/bin/env bash
# lint-workflows.sh — lint the GitHub workflows and the release scripts.
#
#   .github/workflows/*.y*ml  with actionlint (expressions, contexts, permissions, the inputs of
#                             pinned actions; run: blocks through shellcheck)
#   scripts/*.sh, scripts/ci/*.sh, examples/node-image/packer/*.sh  with ShellCheck (the release
#                             scripts and their lib.sh, the CI scripts, the image provisioning)
#
# actionlint is installed once with `go install` into $TOOLS_CACHE (default
# /var/cache/mero-release/bin) and reused; shellcheck is installed with apt-get when it is absent
# (as root only). Log lines: [INFO]/[PASS]/[FAIL]/[ERROR]. Exit codes: 0 clean, 10 findings,
# 1 a tool could not be installed or run.
set -euo pipefail

ACTIONLINT_VERSION=v1.7.7
cache=${TOOLS_CACHE:-/var/cache/mero-release/bin}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

info() { echo "[INFO] $*"; }
die() { echo "[ERROR] $*" >&2; exit 1; }

# --- actionlint, installed once ---------------------------------------------------------
actionlint="$cache/actionlint"
if [ -x "$actionlint" ] && [ "$("$actionlint" -version 2>/dev/null | head -1)" = "$ACTIONLINT_VERSION" ]; then
  info "using cached actionlint $ACTIONLINT_VERSION at $actionlint"
else
  info "installing actionlint $ACTIONLINT_VERSION into $cache"
  mkdir -p "$cache" || die "cannot create $cache (set TOOLS_CACHE)"
  GOBIN="$cache" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
    || die "go install actionlint@$ACTIONLINT_VERSION failed"
fi

# --- shellcheck, from apt when absent ---------------------------------------------------
if ! command -v shellcheck >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "shellcheck is not installed and this is not root: install it (apt-get install shellcheck)"
  info "installing shellcheck with apt-get"
  { apt-get install -y shellcheck >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y shellcheck >/dev/null 2>&1; }; } \
    || die "apt-get install shellcheck failed"
fi
info "$(shellcheck --version | sed -n 2p)"

findings=0

# --- workflows ----------------------------------------------------------------------------
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ ${#workflows[@]} -eq 0 ]; then
  die "no workflow under .github/workflows"
fi
if "$actionlint" -shellcheck "$(command -v shellcheck)" "${workflows[@]}"; then
  echo "[PASS] actionlint: ${#workflows[@]} workflow(s) clean"
else
  rc=$?
  [ "$rc" -eq 1 ] || die "actionlint failed to run (exit $rc)"
  echo "[FAIL] actionlint found problems in .github/workflows"
  findings=$((findings + 1))
fi

# --- scripts --------------------------------------------------------------------------------
scripts=(scripts/*.sh scripts/ci/*.sh examples/node-image/packer/*.sh)
if [ ${#scripts[@]} -eq 0 ]; then
  die "no script under scripts/"
fi
if shellcheck --external-sources --source-path=SCRIPTDIR "${scripts[@]}"; then
  echo "[PASS] shellcheck: ${#scripts[@]} script(s) clean"
else
  rc=$?
  [ "$rc" -eq 1 ] || die "shellcheck failed to run (exit $rc)"
  echo "[FAIL] shellcheck found problems in scripts/"
  findings=$((findings + 1))
fi

if [ "$findings" -gt 0 ]; then
  exit 10
fi
echo "[PASS] workflows and scripts are lint-clean"
