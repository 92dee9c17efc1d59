#!/usr/bin/env python3
"""Does portwatch's memory follow concurrent flows, not packets or file size?

    python benchmarks/gen_capture.py --packets 4000000 --concurrent 20000 \
        -o benchmarks/data/mix-4m.pcap --truth benchmarks/data/mix-4m.truth.csv
    python benchmarks/memory.py                       # mix-2m.pcap vs mix-4m.pcap (same concurrency)
    python benchmarks/memory.py --curve benchmarks/data/mix-2m.pcap --limit 1000000

Peak RSS: each capture is analyzed by a child `portwatch analyze --format jsonl -o /dev/null
--quiet FILE`, and its peak RSS is `ru_maxrss` from `os.wait4` (this parent stays a small
stdlib-only Python, so the high-water mark the child inherits from before its exec is far below
the child's own; the parent's RSS is printed for reference). RSS is also sampled from
/proc/PID/status every 0.1 s to show the curve over the run. The verdict: peak RSS on the
capture twice as long, with the same concurrency, within `--tolerance` (10%) of the shorter's.

`--curve FILE`: how does memory follow the flow table? Runs the analyzer (the core,
`portwatch.pipeline.Analyzer`) in this process and, every `--every` packets, prints this process'
RSS, the live flows in the core's table and the flows reported so far, then the RSS growth from
the first point after warm-up (`--warmup`, 25% of the packets) to the last one (before the
end-of-capture drain) per live flow. The flow table, reassembly buffers and detection state live in
the core (Rust), where tracemalloc cannot see them: RSS is the measure. Memory that follows
concurrency stays flat after warm-up while the live flows do.
"""

from __future__ import annotations

import argparse
import contextlib
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


class _Limit(Exception):
    """Raised from the progress tick to stop reading at --limit packets."""


def self_rss_kb() -> int:
    return vm_rss_kb(os.getpid())


def curve(capture: str, limit: int | None, every: int, warmup: float, workers: int) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from portwatch import pipeline
    from portwatch.pipeline import Analyzer, Config, Setup, open_capture

    setup = Setup.load(Config())
    total = min(limit or _count(capture), _count(capture))
    records = [0]
    points: list[dict] = []
    src = open_capture(capture)
    a = Analyzer(Config(), on_record=lambda r: records.__setitem__(0, records[0] + 1), setup=setup,
                 pcap_name=src.name, workers=workers)
    pipeline.BATCH_PACKETS = every  # the core reads this many packets between ticks
    print(f"before reading: RSS {self_rss_kb() / 1024:.1f} MB", flush=True)

    def tick() -> None:
        packets = a.stats.packets
        point = {"packets": packets, "rss_mb": round(self_rss_kb() / 1024, 1), "live_flows": a.live_flows,
                 "flows_reported": records[0]}
        points.append(point)
        print(f"{packets:>10,} packets  RSS {point['rss_mb']:8.1f} MB  live flows {point['live_flows']:>7,}  "
              f"flows reported {records[0]:>7,}", flush=True)
        if limit and packets >= limit:
            raise _Limit

    t0 = time.perf_counter()
    with contextlib.suppress(_Limit):
        a.run_capture(src, tick)
    wall = time.perf_counter() - t0
    a.close()
    base = next((p for p in points if p["packets"] >= warmup * total), points[0])
    last = points[-1]
    grown = last["rss_mb"] - base["rss_mb"]
    more = last["live_flows"] - base["live_flows"]
    print(f"\nfrom {base['packets']:,} to {last['packets']:,} packets: RSS {grown:+.1f} MB, live flows "
          f"{base['live_flows']:,} -> {last['live_flows']:,}"
          + (f" ({grown * 1024 / more:.2f} KiB a live flow)" if more > 0 else "")
          + f"; {last['packets'] / wall:,.0f} packets/s with the sampling")
    return {"capture": capture, "packets": last["packets"], "workers": workers, "every": every, "curve": points,
            "base": base, "last": last}


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
    ap.add_argument("--curve", metavar="FILE", help="RSS against live flows on FILE, in this process, instead")
    ap.add_argument("--limit", type=int, help="with --curve: stop after this many packets")
    ap.add_argument("--every", type=int, default=250_000, help="with --curve: packets between points")
    ap.add_argument("--warmup", type=float, default=0.25, help="with --curve: fraction before the base")
    ap.add_argument("--workers", type=int, default=1, help="with --curve: the core's threads")
    ap.add_argument("--json", help="results file (default benchmarks/results/memory-<date>.json)")
    args = ap.parse_args(argv)
    if args.curve:
        report = curve(args.curve, args.limit, args.every, args.warmup, args.workers)
        name = "memory-curve"
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
