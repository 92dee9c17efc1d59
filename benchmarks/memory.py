#!/usr/bin/env python3
"""Does portwatch's memory follow concurrent flows, not packets or file size?

    python benchmarks/gen_capture.py --packets 4000000 --concurrent 20000 \
        -o benchmarks/data/mix-4m.pcap --truth benchmarks/data/mix-4m.truth.csv
    python benchmarks/memory.py                       # mix-2m.pcap vs mix-4m.pcap (same concurrency)
    python benchmarks/memory.py --tracemalloc benchmarks/data/mix-2m.pcap --limit 1000000

Peak RSS: each capture is analyzed by a child `portwatch analyze --format jsonl -o /dev/null
--quiet FILE`, and its peak RSS is `ru_maxrss` from `os.wait4` (this parent stays a small
stdlib-only Python, so the high-water mark the child inherits from before its exec is far below
the child's own; the parent's RSS is printed for reference). RSS is also sampled from
/proc/PID/status every 0.1 s to show the curve over the run. The verdict: peak RSS on the
capture twice as long, with the same concurrency, within `--tolerance` (10%) of the shorter's.

`--tracemalloc FILE`: where does memory go? Runs the analyzer in this process with tracemalloc
(one frame per allocation: file:line), takes a snapshot at every `--every` packets, and prints
the traced total and the live flows at each, then the source lines whose allocations grew the
most between the first snapshot after warm-up (`--warmup`, 25% of the packets) and the last one
(before the end-of-capture drain). Memory that follows concurrency stays flat after warm-up; a line
that keeps growing is what holds memory per packet or per finished flow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMAND = [sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", "/dev/null", "--quiet"]


def measured_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # start from .pyc as an installed package would
    return env


def vm_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss(capture: str, env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([*COMMAND, capture], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            kb = vm_rss_kb(proc.pid)
            if kb:
                samples.append((time.perf_counter() - t0, kb))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    curve = {}
    for frac in (0.1, 0.25, 0.5, 0.75, 0.9):
        before = [kb for t, kb in samples if t <= frac * wall]
        curve[f"{int(frac * 100)}%"] = round(before[-1] / 1024, 1) if before else None
    return {
        "capture": capture,
        "bytes": os.path.getsize(capture),
        "exit": code,
        "ok": code in (0, 1),
        "message": err.strip()[-500:],
        "wall_s": round(wall, 2),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        "maxrss_mb": round(ru.ru_maxrss / 1024, 1),
        "rss_curve_mb": curve,
    }


def compare(captures: list[str], tolerance: float) -> dict:
    env = measured_env()
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(HERE.parent / "portwatch")],
                   env=env, stdout=subprocess.DEVNULL, check=False)
    parent_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    runs = [peak_rss(c, env) for c in captures]
    for r in runs:
        print(f"{Path(r['capture']).name:<22} {r['bytes'] / 1e9:6.2f} GB  peak RSS {r['maxrss_mb']:7.1f} MB  "
              f"wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  RSS over the run (MB): "
              + " ".join(f"{k}={v}" for k, v in r["rss_curve_mb"].items()), flush=True)
        if not r["ok"]:
            print(f"  failed (exit {r['exit']}): {r['message']}", file=sys.stderr)
    report: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "parent_rss_mb": parent_mb,
                    "runs": runs}
    if len(runs) >= 2 and all(r["ok"] for r in runs):
        growth = runs[-1]["maxrss_mb"] / runs[0]["maxrss_mb"] - 1
        report["growth"] = round(growth, 4)
        report["within_tolerance"] = abs(growth) <= tolerance
        print(f"peak RSS {runs[-1]['maxrss_mb']} MB vs {runs[0]['maxrss_mb']} MB: {growth:+.1%} "
              f"({'within' if report['within_tolerance'] else 'NOT within'} {tolerance:.0%}); "
              f"this parent's own RSS {parent_mb} MB")
    return report


def trace(capture: str, limit: int | None, every: int, warmup: float, top: int) -> dict:
    import tracemalloc
    from itertools import islice

    sys.path.insert(0, str(HERE.parent))
    from portwatch import progress
    from portwatch.capture.sources import CaptureSource
    from portwatch.pipeline import Analyzer, Config, Setup

    setup = Setup.load(Config())
    total = limit or _count(capture)
    records = [0]
    snaps: list[tuple[int, int, int, tracemalloc.Snapshot]] = []
    tracemalloc.start(1)
    with CaptureSource(capture) as src:
        a = Analyzer(Config(), on_record=lambda r: records.__setitem__(0, records[0] + 1), setup=setup,
                     pcap_name=src.name)
        progress.CHUNK_PACKETS = every
        next_at = [every]

        def tick() -> None:
            if a.stats.packets >= next_at[0]:
                next_at[0] += every
                snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
                traced = tracemalloc.get_traced_memory()[0]
                snaps.append((a.stats.packets, traced, len(a.table.order), snap))
                print(f"{a.stats.packets:>10,} packets  traced {traced / 2**20:8.1f} MB  live flows "
                      f"{len(a.table.order):>7,}  flows reported {records[0]:>7,}", flush=True)

        progress.drive(a, islice(src, limit) if limit else src, tick)
        a.close()
    tracemalloc.stop()
    base = next((s for s in snaps if s[0] >= warmup * total), snaps[0])
    last = snaps[-1]
    diff = last[3].compare_to(base[3], "lineno")
    print(f"\ngrowth from {base[0]:,} to {last[0]:,} packets: "
          f"{(last[1] - base[1]) / 2**20:+.1f} MB traced, live flows {base[2]:,} -> {last[2]:,}")
    rows = []
    for stat in diff[:top]:
        frame = stat.traceback[0]
        rows.append({"where": f"{frame.filename}:{frame.lineno}", "size_diff_kb": round(stat.size_diff / 1024, 1),
                     "size_kb": round(stat.size / 1024, 1), "count_diff": stat.count_diff})
        print(f"{stat.size_diff / 1024:+10.1f} KiB ({stat.count_diff:+8,} blocks) now {stat.size / 1024:9.1f} KiB  "
              f"{frame.filename}:{frame.lineno}")
    return {"capture": capture, "packets": last[0],
            "curve": [{"packets": p, "traced_mb": round(t / 2**20, 1), "live_flows": f} for p, t, f, _ in snaps],
            "top_growth": rows}


def _count(capture: str) -> int:
    sys.path.insert(0, str(HERE))
    import run as bench  # benchmarks/run.py

    return bench.count_packets(capture)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="*", default=[str(HERE / "data" / "mix-2m.pcap"),
                                                   str(HERE / "data" / "mix-4m.pcap")],
                    help="captures in increasing length (same concurrency); the first is the reference")
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--tracemalloc", metavar="FILE", help="trace allocations on FILE in this process instead")
    ap.add_argument("--limit", type=int, help="with --tracemalloc: stop after this many packets")
    ap.add_argument("--every", type=int, default=250_000, help="with --tracemalloc: packets between snapshots")
    ap.add_argument("--warmup", type=float, default=0.25, help="with --tracemalloc: fraction before the base")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", help="results file (default benchmarks/results/memory-<date>.json)")
    args = ap.parse_args(argv)
    if args.tracemalloc:
        report = trace(args.tracemalloc, args.limit, args.every, args.warmup, args.top)
        name = "memory-trace"
    else:
        report = compare(args.captures, args.tolerance)
        name = "memory"
    out = Path(args.json or HERE / "results" / f"{name}-{dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results in {out}")
    if "within_tolerance" in report:
        return 0 if report["within_tolerance"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
