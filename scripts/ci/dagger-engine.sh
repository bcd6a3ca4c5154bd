#!/usr/bin/env bash
# dagger-engine.sh start|stop|env — make a Dagger engine reachable for this repository.
# With a working `dagger` CLI and engine (Docker on a laptop, GitHub Actions) it does nothing.
# Otherwise it builds and runs the offline engine of ../shared/tools/dagger-offline (no Docker,
# no registry), keeping its builds in $DAGGER_HOME between runs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
export DAGGER_HOME=${DAGGER_HOME:-/var/cache/dagger-offline}
offline=${DAGGER_OFFLINE_TOOL:-$repo/../shared/tools/dagger-offline}

env_lines() {
  cat <<EOT
export DAGGER_HOME=$DAGGER_HOME
export _EXPERIMENTAL_DAGGER_RUNNER_HOST=unix://$DAGGER_HOME/engine.sock
export _EXPERIMENTAL_DAGGER_CLI_BIN=$DAGGER_HOME/bin/dagger
export DO_NOT_TRACK=1 DAGGER_NO_NAG=1
export PATH=$DAGGER_HOME/bin:\$PATH
EOT
}

case "${1:-}" in
start)
  if [ -z "${DAGGER_FORCE_OFFLINE:-}" ] && command -v dagger >/dev/null 2>&1 && [ ! -S "$DAGGER_HOME/engine.sock" ] \
     && timeout 60 dagger core version >/dev/null 2>&1; then
    echo "[INFO] using the Dagger engine already reachable from $(command -v dagger)"
    exit 0
  fi
  [ -f "$offline/setup.sh" ] || { echo "[ERROR] no Dagger engine reachable and no offline tool at $offline"; exit 1; }
  mkdir -p "$DAGGER_HOME"
  echo "[INFO] preparing the offline Dagger engine in $DAGGER_HOME (cold: ~15 min, warm: ~1 min)"
  MODULE_DIRS="$repo/.dagger" bash "$offline/setup.sh" --with-go-sdk
  bash "$DAGGER_HOME/engine-ctl.sh" stop >/dev/null 2>&1 || true
  bash "$DAGGER_HOME/engine-ctl.sh" start
  ;;
stop)
  if [ -f "$DAGGER_HOME/engine-ctl.sh" ] && [ -f "$DAGGER_HOME/unshare.pid" ]; then
    bash "$DAGGER_HOME/engine-ctl.sh" stop
  fi
  ;;
env)
  if [ -S "$DAGGER_HOME/engine.sock" ]; then env_lines; fi
  ;;
*)
  echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
