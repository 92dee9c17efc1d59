#!/usr/bin/env python3
"""`portwatch analyze --workers N`: throughput for N = 1, 2, ... on one capture, wall and CPU time.

    python benchmarks/scale.py --capture benchmarks/data/mix-2m.pcap --workers 1,2 --repeat 3

Each run is `portwatch analyze --format jsonl -o /dev/null --quiet --workers N FILE` in a child
(measured as benchmarks/run.py measures: byte-compiled modules, GNU time or wait4 for CPU time
and the peak RSS, /proc sampling for the whole tree). `--workers N` is N threads in the core
(portwatch._core, core/src/parallel.rs): the calling thread reads and decodes the capture once
and hands each packet to the thread that tracks its flow (a symmetric hash); the records are the
same, in the same order, for every N. The Python side (records, findings, JSON) stays on the
calling thread.

Reported per N: wall time and packets/s (best of --repeat), CPU time (user + system of all
threads), speed-up over N=1 in wall time, and `cpu_overhead` = CPU(N) / CPU(1): the extra work
splitting costs (batching and handing packets between threads, merging the records back in
order). On a machine shared with other work the wall speed-up understates what N idle cores give;
`cpu_bound_speedup` = N * CPU(1) / CPU(N) is what N idle cores would give if the work were
balanced (it is not quite: the reading thread and the Python side are serial).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402 - benchmarks/run.py: measure(), measured_env(), precompile(), count_packets()

COMMAND = "portwatch analyze --format jsonl -o /dev/null --quiet --workers {workers} {pcap}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", default=str(HERE / "data" / "mix-2m.pcap"))
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the reference")
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count; the fastest is kept")
    ap.add_argument("--command", default=COMMAND, help="{workers} and {pcap} are replaced")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="results file (default benchmarks/results/scale-<date>.json)")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args(argv)

    env = bench.measured_env()
    if not args.no_compile:
        bench.precompile(env, quiet=False)
    capture = os.path.abspath(args.capture)
    packets = bench.count_packets(capture)
    with open(capture, "rb") as fh:  # into the page cache, as for every run after it
        while fh.read(1 << 24):
            pass
    counts = [int(w) for w in args.workers.split(",")]
    rows = []
    for n in counts:
        argv_n = shlex.split(args.command.format(workers=n, pcap=shlex.quote(capture)))
        runs = [bench.measure(argv_n, env, args.timeout, ok_exit=(0, 1)) for _ in range(args.repeat)]
        good = [r for r in runs if r["status"] == "ok"]
        if not good:
            print(f"workers={n}: failed: {runs[-1].get('message')}", file=sys.stderr)
            return 1
        best = min(good, key=lambda r: r["wall_s"])
        cpu = round(best["user_s"] + best["sys_s"], 3)
        rows.append({"workers": n, **best, "cpu_s": cpu, "pkt_per_s": round(packets / best["wall_s"]),
                     "pkt_per_cpu_s": round(packets / cpu) if cpu else None,
                     "all_wall_s": [r["wall_s"] for r in good]})
    ref = rows[0]
    for r in rows:
        r["speedup_wall"] = round(ref["wall_s"] / r["wall_s"], 3)
        r["cpu_overhead"] = round(r["cpu_s"] / ref["cpu_s"], 3)
        r["cpu_bound_speedup"] = round(r["workers"] / ref["workers"] * ref["cpu_s"] / r["cpu_s"], 3)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "capture": capture,
        "packets": packets,
        "bytes": os.path.getsize(capture),
        "command": args.command,
        "machine": bench.machine(),
        "loadavg_at_end": os.getloadavg(),
        "runs": rows,
    }
    out = Path(args.json or HERE / "results" / f"scale-{dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'workers':>7} {'wall s':>8} {'pkt/s':>10} {'cpu s':>8} {'pkt/cpu-s':>10} {'RSS MB':>7} "
          f"{'tree MB':>8} {'speed-up':>8} {'cpu x':>6} {'cpu-bound':>9}")
    for r in rows:
        print(f"{r['workers']:>7} {r['wall_s']:>8.2f} {r['pkt_per_s']:>10,} {r['cpu_s']:>8.2f} "
              f"{r['pkt_per_cpu_s'] or 0:>10,} {r['maxrss_mb']:>7.1f} {r['tree_rss_mb']:>8.1f} "
              f"{r['speedup_wall']:>7.2f}x {r['cpu_overhead']:>5.2f}x {r['cpu_bound_speedup']:>8.2f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
