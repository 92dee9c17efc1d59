#!/usr/bin/env bash
# The core's throughput and peak memory on one capture, best of N runs, with 1 and 2 workers:
# the analyze example (the core alone, no Python) and `portwatch analyze --format jsonl`
# (the whole CLI, records written to /dev/null). Runs of the two worker counts are interleaved,
# so a change in the machine's load hits both alike; the load average is printed before and
# after (on a shared machine, judge the figures by it).
#
#   benchmarks/core_bench.sh [CAPTURE] [RUNS]      default: benchmarks/data/mix-2m.pcap, 3
#
# Env: PORTWATCH (default: portwatch on PATH), NO_BUILD=1 to
# skip building the example, SKIP_CLI=1 to time the example only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
capture="${1:-$here/data/mix-2m.pcap}"
runs="${2:-3}"
example="${CARGO_TARGET_DIR:-$root/core/target}/release/examples/analyze"
portwatch="${PORTWATCH:-portwatch}"

if [[ ! -f "$capture" ]]; then
    echo "no capture: $capture (make one with benchmarks/gen_capture.py)" >&2
    exit 2
fi
if [[ "${NO_BUILD:-}" != 1 ]]; then
    (cd "$root/core" && cargo build --release --example analyze -q)
fi

# Packets in the capture: the example's own count (it reads every record).
packets="$("$example" "$capture" | awk '{print $1}')"

# One timed run: prints "seconds peak_kb". (portwatch exits 1 when it has findings: not a failure.)
timed() {
    local out
    out="$( { /usr/bin/time -f '@@ %e %M' "$@" >/dev/null || true; } 2>&1 | grep '^@@' )"
    echo "${out#@@ }"
}

declare -A best_s best_kb
note() {
    local key="$1" s="$2" kb="$3"
    if [[ -z "${best_s[$key]:-}" ]] || awk -v a="$s" -v b="${best_s[$key]}" 'BEGIN{exit !(a<b)}'; then
        best_s[$key]="$s"
    fi
    if [[ -z "${best_kb[$key]:-}" ]] || (( kb < best_kb[$key] )); then
        best_kb[$key]="$kb"
    fi
}

echo "capture: $capture ($packets packets), best of $runs"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
for ((i = 1; i <= runs; i++)); do
    for w in 1 2; do
        read -r s kb < <(timed "$example" "$capture" --workers "$w")
        note "example/$w" "$s" "$kb"
        if [[ "${SKIP_CLI:-}" != 1 ]]; then
            read -r s kb < <(timed "$portwatch" analyze "$capture" --format jsonl -o /dev/null --workers "$w")
            note "cli/$w" "$s" "$kb"
        fi
    done
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %10s %14s %12s\n' run seconds packets/s peak_RSS_MB
for key in example/1 example/2 cli/1 cli/2; do
    [[ -n "${best_s[$key]:-}" ]] || continue
    printf '%-22s %10s %14.0f %12.1f\n' "$key workers" "${best_s[$key]}" \
        "$(awk -v p="$packets" -v s="${best_s[$key]}" 'BEGIN{print p/s}')" \
        "$(awk -v k="${best_kb[$key]}" 'BEGIN{print k/1024}')"
done
for kind in example cli; do
    [[ -n "${best_s[$kind/2]:-}" ]] || continue
    awk -v a="${best_s[$kind/1]}" -v b="${best_s[$kind/2]}" -v k="$kind" \
        'BEGIN{printf "%s: 2 workers are %.2fx one\n", k, a/b}'
done
