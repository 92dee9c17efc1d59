#!/usr/bin/env bash
# Long fuzzing run: every target (or those named) for SECONDS each, JOBS at a time.
#   fuzz/run.sh                      # all targets, 600 s each, 2 at a time
#   SECONDS_EACH=3600 JOBS=1 fuzz/run.sh decode sources
# Uses atheris when it imports (pip install atheris), else hypothesis (fuzz/hypo_main.py).
# Logs go to fuzz/logs/TARGET.log; the last line of each says how many inputs ran.
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-600}
JOBS=${JOBS:-2}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(decode sources reassembly probes signature policy)
fi
mkdir -p fuzz/logs fuzz/crashes
if python -c "import atheris" 2>/dev/null; then ENGINE=atheris; else ENGINE=hypothesis; fi
echo "engine: $ENGINE, ${SECONDS_EACH}s per target, $JOBS at a time"

run_one() {
  local t=$1 log=fuzz/logs/$1.log
  if [ "$ENGINE" = atheris ]; then
    python fuzz/atheris_main.py "$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 \
      -artifact_prefix="fuzz/crashes/$t-" -print_final_stats=1 >"$log" 2>&1
  else
    python fuzz/hypo_main.py "$t" --seconds "$SECONDS_EACH" >"$log" 2>&1
  fi
  local rc=$?
  local runs
  runs=$(grep -Eo 'Done [0-9]+ runs|[0-9]+ executions' "$log" | tail -1)
  echo "$t: exit $rc, ${runs:-no count (see $log)}"
  return $rc
}

status=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
