# shellcheck shell=bash
# Shared by bench/*/run.sh: time two commands side by side and judge their ratio.
#
#   compare ROUNDS GOAL_OP GOAL NAME_A NAME_B CMD_A CMD_B
#
# runs CMD_A and CMD_B (bash -c strings) interleaved for ROUNDS rounds (the order alternates
# each round, so neither side always runs on a cache or CPU state the other left), computes the
# per-round ratio A/B, prints a table and, as its last line,
#
#   NAME_A / NAME_B: min R median R (goal OP GOAL) PASS|FAIL
#
# and returns 10 when the median misses the goal (OP is <= or >=). Extra commands to report
# but not judge can be listed in REPORT_NAMES / REPORT_CMDS (arrays); they run in the same
# rounds.

bench_now() { date +%s.%N; }

bench_time() { # wall seconds of bash -c "$1"; fails when the command fails
  local t0 t1
  t0=$(bench_now)
  bash -c "$1" >/dev/null 2>&1 || return 1
  t1=$(bench_now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}

bench_median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
bench_min() { sort -g | head -1; }

compare() {
  local rounds=$1 op=$2 goal=$3 name_a=$4 name_b=$5 cmd_a=$6 cmd_b=$7
  local -a ta tb ratios
  local -A tx
  local r a b i
  [ "$rounds" -ge 5 ] || { echo "[ERROR] at least 5 rounds" >&2; return 1; }
  for r in $(seq 1 "$rounds"); do
    if (( r % 2 )); then
      a=$(bench_time "$cmd_a") || { echo "[ERROR] $name_a failed" >&2; return 1; }
      b=$(bench_time "$cmd_b") || { echo "[ERROR] $name_b failed" >&2; return 1; }
    else
      b=$(bench_time "$cmd_b") || { echo "[ERROR] $name_b failed" >&2; return 1; }
      a=$(bench_time "$cmd_a") || { echo "[ERROR] $name_a failed" >&2; return 1; }
    fi
    for i in "${!REPORT_CMDS[@]}"; do
      tx[$i]+="$(bench_time "${REPORT_CMDS[$i]}" || echo nan) "
    done
    ta+=("$a"); tb+=("$b")
    ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f\n", a / b }')")
    echo "[INFO] round $r: $name_a ${a}s, $name_b ${b}s, ratio ${ratios[-1]}" >&2
  done
  printf '\n| %-44s | %9s | %9s |\n' command "min (s)" "median (s)"
  printf '|%s|%s|%s|\n' "----------------------------------------------" "-----------" "-----------"
  printf '| %-44s | %9s | %9s |\n' "$name_a" "$(printf '%s\n' "${ta[@]}" | bench_min)" "$(printf '%s\n' "${ta[@]}" | bench_median)"
  printf '| %-44s | %9s | %9s |\n' "$name_b" "$(printf '%s\n' "${tb[@]}" | bench_min)" "$(printf '%s\n' "${tb[@]}" | bench_median)"
  for i in "${!REPORT_CMDS[@]}"; do
    # shellcheck disable=SC2086
    printf '| %-44s | %9s | %9s |\n' "${REPORT_NAMES[$i]}" "$(printf '%s\n' ${tx[$i]} | bench_min)" "$(printf '%s\n' ${tx[$i]} | bench_median)"
  done
  local rmin rmed verdict=PASS
  rmin=$(printf '%s\n' "${ratios[@]}" | bench_min)
  rmed=$(printf '%s\n' "${ratios[@]}" | bench_median)
  if ! awk -v r="$rmed" -v g="$goal" -v op="$op" 'BEGIN { exit !((op == "<=") ? r <= g : r >= g) }'; then verdict=FAIL; fi
  echo
  echo "$name_a / $name_b: min $rmin median $rmed (goal $op $goal, $rounds interleaved rounds) $verdict"
  [ "$verdict" = PASS ] || return 10
}

# bench_cosign — sets $cosign to cosign v2.6.1 in $COSIGN_CACHE (default
# /var/cache/mero-release/bin, where scripts/ci/cosign-interop.sh installs it), installing it there
# once when it is missing; exit 1 when it cannot.
bench_cosign() {
  local version=v2.6.1 cache=${COSIGN_CACHE:-/var/cache/mero-release/bin}
  cosign="$cache/cosign"
  if ! { [ -x "$cosign" ] && "$cosign" version 2>/dev/null | grep -q "GitVersion: *$version\$"; }; then
    echo "[INFO] installing cosign $version into $cache (one-time, several minutes)" >&2
    mkdir -p "$cache" && GOBIN="$cache" go install "github.com/sigstore/cosign/v2/cmd/cosign@$version" \
      || { echo "[ERROR] cannot install cosign" >&2; exit 1; }
  fi
}
