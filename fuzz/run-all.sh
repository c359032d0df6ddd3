#!/usr/bin/env bash
# Runs every fuzz target, one after another (or JOBS at once), each for a
# fixed time, from its corpus plus the checked-in seeds (real captures from
# the fixtures), and prints what each did.
#
#   bash fuzz/run-all.sh MINUTES [JOBS]     # e.g. 10 minutes per target
#   bash fuzz/run-all.sh --seconds N [JOBS] # CI: a short run of each
#
# Per target: executions, executions per second, coverage (libFuzzer's
# `cov` and `ft`), corpus size, and new crash/leak/timeout/oom files in
# fuzz/artifacts/TARGET. Logs go to fuzz/logs/TARGET.log, the table to
# stdout and fuzz/logs/summary.md. Exits 1 when a target found a crash.
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--seconds" ]; then
  SECONDS_EACH=${2:?--seconds N}; JOBS=${3:-1}
else
  MINUTES=${1:?usage: run-all.sh MINUTES [JOBS] | run-all.sh --seconds N [JOBS]}
  SECONDS_EACH=$((MINUTES * 60)); JOBS=${2:-1}
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p logs
targets=$(cargo fuzz list)

run_one() {
  local t=$1
  local corpora=("corpus/$t")
  mkdir -p "corpus/$t" "artifacts/$t"
  [ -d "seeds/$t" ] && corpora+=("seeds/$t")
  ls "artifacts/$t" > "logs/$t.before" 2>/dev/null || true
  # rss_limit: the transcode targets hold codec state; 2 GiB is plenty.
  cargo fuzz run "$t" "${corpora[@]}" -- -max_total_time="$SECONDS_EACH" \
    -rss_limit_mb=2048 -print_final_stats=1 > "logs/$t.log" 2>&1 || echo "exit $?" >> "logs/$t.log"
}

running=0
for t in $targets; do
  echo "--- fuzz $t (${SECONDS_EACH}s)"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
{
  echo "| target | executions | exec/s | cov | ft | corpus | new crashes |"
  echo "|---|---|---|---|---|---|---|"
  for t in $targets; do
    log="logs/$t.log"
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    done_line=$(grep -E '^#[0-9]+\s+DONE' "$log" | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$done_line" | awk '{print $2}' || true)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$done_line" | awk '{print $2}' || true)
    corp=$(grep -oE 'corp: [0-9]+' <<<"$done_line" | awk '{print $2}' || true)
    rate=$(grep -oE 'exec/s: [0-9]+' <<<"$done_line" | awk '{print $2}' || true)
    new=$(comm -13 <(sort "logs/$t.before") <(ls "artifacts/$t" | sort) | grep -cE '^(crash|leak|timeout|oom)-' || true)
    if [ "$new" != "0" ] || grep -q '^exit ' "$log"; then failed=1; fi
    echo "| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $new |"
  done
} | tee logs/summary.md
if [ "$failed" -ne 0 ]; then
  echo "run-all: a target crashed; see fuzz/logs/ and fuzz/artifacts/" >&2
  exit 1
fi
