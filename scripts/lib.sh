# shellcheck shell=bash
# lib.sh — sourced by the release scripts in scripts/: the SPEC §9 log lines and the mero-release
# CLI every script is a thin wrapper over.
#
# MERO_RELEASE_BIN  the mero-release binary to run. When it is set and executable it is used as it
#                   is; otherwise it is built there (default: bin/mero-release of this repository)
#                   with `CGO_ENABLED=0 go build ./cmd/mero-release` (static, as .ci/run builds it),
#                   once, and again only when a source file is newer than the binary.
#
# The scripts end with `exec` of the CLI, so its log lines and exit code are theirs:
# 0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing required asset.

MR_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MR_SCRIPT=$(basename "$0")
MR_BIN=

# mr_info / mr_error MESSAGE… — SPEC §9 log lines on stderr.
mr_info() { printf '[INFO] %s\n' "$*" >&2; }
mr_error() { printf '[ERROR] %s\n' "$*" >&2; }

# mr_usage_error MESSAGE… — a usage error: an [ERROR] line and a hint, exit 2.
mr_usage_error() {
  mr_error "$MR_SCRIPT: $*"
  printf 'Run %s --help for usage.\n' "$MR_SCRIPT" >&2
  exit 2
}

# mr_wants_help ARG… — true when -h or --help comes before any "--".
mr_wants_help() {
  local arg
  for arg in "$@"; do
    case $arg in
      --) return 1 ;;
      -h | --help) return 0 ;;
    esac
  done
  return 1
}

# mr_flag_value NAME ARG… — prints the value of --NAME VALUE or --NAME=VALUE (the last one given).
mr_flag_value() {
  local name=$1 value=
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --) break ;;
      "--$name="*) value=${1#*=} ;;
      "--$name")
        if [ $# -gt 1 ]; then
          value=$2
          shift
        fi
        ;;
    esac
    shift
  done
  printf '%s' "$value"
}

# mr_stale BIN — true when BIN is missing or a source of the CLI is newer than it.
mr_stale() {
  local bin=$1 newer
  [ -x "$bin" ] || return 0
  newer=$(find "$MR_REPO/go.mod" "$MR_REPO/go.sum" "$MR_REPO/cmd" "$MR_REPO/pipeline" "$MR_REPO/examples" "$MR_REPO/policies" \
    -type f -newer "$bin" ! -name '*_test.go' ! -path '*/testdata/*' -print -quit 2>/dev/null)
  [ -n "$newer" ]
}

# mr_cli — sets MR_BIN to a runnable mero-release, building it when needed; exit 1 when it cannot.
mr_cli() {
  if [ -n "${MERO_RELEASE_BIN:-}" ] && [ -x "$MERO_RELEASE_BIN" ] && [ ! -d "$MERO_RELEASE_BIN" ]; then
    MR_BIN=$MERO_RELEASE_BIN
    return 0
  fi
  local bin=${MERO_RELEASE_BIN:-$MR_REPO/bin/mero-release}
  if mr_stale "$bin"; then
    command -v go >/dev/null 2>&1 || { mr_error "$MR_SCRIPT: no mero-release at $bin and no Go toolchain to build it (set MERO_RELEASE_BIN)"; exit 1; }
    mkdir -p "$(dirname "$bin")" || { mr_error "$MR_SCRIPT: cannot create $(dirname "$bin")"; exit 1; }
    mr_info "building mero-release: CGO_ENABLED=0 go build -o $bin ./cmd/mero-release"
    if ! (cd "$MR_REPO" && CGO_ENABLED=0 go build -o "$bin.tmp.$$" ./cmd/mero-release) >&2; then
      rm -f "$bin.tmp.$$"
      mr_error "$MR_SCRIPT: go build ./cmd/mero-release failed"
      exit 1
    fi
    mv -f "$bin.tmp.$$" "$bin"
  fi
  MR_BIN=$bin
}

# mr_require_command NAME — exit 1 with an [ERROR] when the CLI has no top-level command NAME.
mr_require_command() {
  local name=$1
  mr_cli
  if ! "$MR_BIN" --help 2>/dev/null | grep -Eq "^  $name( |\$)"; then
    mr_error "$MR_SCRIPT: $MR_BIN has no '$name' command: update mero-release (MERO_RELEASE_BIN), or run the whole pipeline with 'mero-release release-kms' / 'release-node-image'"
    exit 1
  fi
}

# mr_exec ARG… — replaces the script by `mero-release ARG…`: its output and exit code are the script's.
mr_exec() {
  [ -n "$MR_BIN" ] || mr_cli
  exec "$MR_BIN" "$@"
}
