#!/usr/bin/env bash
# dagger-engine.sh start|stop|prune|env — make a Dagger engine reachable for this repository.
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

# The engine's cache (its state folder) must stay bounded on a machine that keeps $DAGGER_HOME
# between runs. The engine's default garbage collection cannot see that bound here: it reads
# the disk's free blocks (Bfree), while this machine's filesystem reserves most of them
# (resv_strict), so the cache once grew to 63 GB and CI failed with "no space left on device".
# Three guards, all sized by DAGGER_CACHE_MAX_GB (default 12):
#   - /etc/dagger/engine.json sets gc.maxUsedSpace, so the engine itself prunes past it;
#   - before a start, a state folder above the cap, or less than DAGGER_MIN_FREE_GB (default 10)
#     available on its disk, is removed (the engine is stopped; it is only cache);
#   - `prune` (run by CI before `stop`) applies that policy at the end of a run.
cache_max_gb=${DAGGER_CACHE_MAX_GB:-12}
min_free_gb=${DAGGER_MIN_FREE_GB:-10}
engine_config=${DAGGER_ENGINE_CONFIG:-/etc/dagger/engine.json}

write_engine_config() {
  local want
  want=$(printf '{"gc": {"maxUsedSpace": %d, "reservedSpace": %d}}' \
    $((cache_max_gb * 1024 * 1024 * 1024)) $((cache_max_gb * 1024 * 1024 * 1024 / 4)))
  if [ -f "$engine_config" ] && ! grep -q '"gc"' "$engine_config"; then
    echo "[WARN] $engine_config exists without a gc setting; left as it is (the cache is bounded at start only)"
    return
  fi
  if [ ! -f "$engine_config" ] || [ "$(cat "$engine_config")" != "$want" ]; then
    if mkdir -p "$(dirname "$engine_config")" 2>/dev/null && echo "$want" 2>/dev/null > "$engine_config"; then
      echo "[INFO] engine garbage collection: $engine_config = $want"
    else
      echo "[WARN] cannot write $engine_config; the cache is bounded at start only"
    fi
  fi
}

bound_cache() {
  local state=$DAGGER_HOME/state used_kb avail_kb
  [ -d "$state" ] || return 0
  used_kb=$(du -xsk "$state" | cut -f1)
  avail_kb=$(df -Pk "$DAGGER_HOME" | awk 'NR==2 {print $4}')
  if [ "$used_kb" -gt $((cache_max_gb * 1024 * 1024)) ] || [ "$avail_kb" -lt $((min_free_gb * 1024 * 1024)) ]; then
    echo "[WARN] engine cache $((used_kb / 1024)) MB, $((avail_kb / 1024)) MB available on its disk" \
      "(cap ${cache_max_gb} GB, floor ${min_free_gb} GB): removing $state"
    rm -rf "$state"
  else
    echo "[INFO] engine cache $((used_kb / 1024)) MB, $((avail_kb / 1024)) MB available on its disk"
  fi
}

# offline_engine_alive — true when the engine process this script started is still running.
offline_engine_alive() {
  local pid
  pid=$(cat "$DAGGER_HOME/unshare.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
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
  write_engine_config
  bound_cache
  bash "$DAGGER_HOME/engine-ctl.sh" start
  ;;
prune)
  # only the offline engine this script started: a laptop's or CI's own engine manages itself
  if [ -S "$DAGGER_HOME/engine.sock" ] && [ -f "$DAGGER_HOME/unshare.pid" ]; then
    eval "$(env_lines)"
    if ! out=$(timeout 300 dagger core engine local-cache prune --use-default-policy 2>&1); then
      echo "[WARN] pruning the engine cache failed:"; echo "$out" | tail -5
    fi
    echo "[INFO] engine cache after pruning: $(du -xsh "$DAGGER_HOME/state" | cut -f1)"
  fi
  ;;
stop)
  if [ -f "$DAGGER_HOME/engine-ctl.sh" ] && [ -f "$DAGGER_HOME/unshare.pid" ]; then
    bash "$DAGGER_HOME/engine-ctl.sh" stop
  fi
  # engine-ctl.sh leaves the socket behind: a stale engine.sock made `env` print exports for a
  # dead engine, and the next `dagger` call hung at "connecting to engine" with no error.
  rm -f "$DAGGER_HOME/engine.sock"
  ;;
env)
  # Prints the exports for the offline engine this script started, only when it answers.
  if [ -S "$DAGGER_HOME/engine.sock" ]; then
    if offline_engine_alive && (eval "$(env_lines)"; timeout "${DAGGER_ENV_TIMEOUT:-60}" dagger core version >/dev/null 2>&1); then
      env_lines
      exit 0
    fi
    echo "[ERROR] the offline Dagger engine at $DAGGER_HOME/engine.sock does not answer: run 'bash scripts/ci/dagger-engine.sh start'" >&2
    exit 1
  fi
  if command -v dagger >/dev/null 2>&1 && timeout "${DAGGER_ENV_TIMEOUT:-60}" dagger core version >/dev/null 2>&1; then
    exit 0 # a laptop's or CI's own engine: nothing to export
  fi
  echo "[ERROR] no Dagger engine answers: run 'bash scripts/ci/dagger-engine.sh start' (offline engine) or start Docker" >&2
  exit 1
  ;;
*)
  echo "usage: $0 start|stop|prune|env" >&2; exit 2 ;;
esac
