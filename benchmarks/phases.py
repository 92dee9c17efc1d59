#!/usr/bin/env python3
"""Where a run's wall time goes, phase by phase and thread by thread: the path `portwatch analyze
--format jsonl -o FILE` takes, in this process.

    python benchmarks/phases.py CAPTURE [-o /dev/null] [--workers N]

Phases: the set-up (the interpreter and imports up to this script's first line are not in it;
`run.py` times the whole process), the read (the core reads, decodes and analyses the capture
while Python turns the flows that ended into findings and lines) and the drain (the flows still
open at the end, made records by the core and handed to Python a slice at a time). For each phase
the wall time and the CPU time each thread spent in it (Linux's per-thread counters in
/proc/self/task, clock ticks). A phase whose busiest thread's CPU is close to its wall time is
bound by that thread; where most flows are still open at the end, Python is idle in the read and
alone sets the drain's pace (benchmarks/README.md, "Where the time goes").
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from portwatch import _core
from portwatch.model import FlowRecord
from portwatch.pipeline import Analyzer, Config, Setup, open_capture
from portwatch.report.recordfile import RecordFile
from portwatch.report.sinks import SINKS
from portwatch.report.summary import Summary

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each live thread of this process now, by thread id."""
    out: dict[int, tuple[str, float]] = {}
    for tid in Path("/proc/self/task").iterdir():
        try:
            stat = (tid / "stat").read_text()
        except OSError:  # ended since the listing
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


class Marks:
    """Wall time and per-thread CPU at each phase boundary. The core's threads end inside a phase
    (the reader's at the end of the capture), where a reading at the boundary cannot see them: a
    sampler thread reads every thread's counters every `every` seconds and a boundary takes the
    last reading of each thread seen so far (a thread's last ~10 ms before it ended may fall in
    the next phase)."""

    def __init__(self, every: float = 0.01) -> None:
        self.points: list[tuple[str, float, dict[int, tuple[str, float]]]] = []
        self.seen: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, args=(every,), name="phases-sampler", daemon=True)
        self._sampler.start()

    def _sample(self, every: float) -> None:
        while not self._stop.wait(every):
            now = thread_cpu()
            with self._lock:
                self.seen.update(now)

    def mark(self, name: str) -> None:
        now = thread_cpu()
        with self._lock:
            self.seen.update(now)
            self.points.append((name, time.monotonic(), dict(self.seen)))

    def stop(self) -> None:
        self._stop.set()
        self._sampler.join()

    def phases(self) -> list[tuple[str, float, dict[str, float]]]:
        """(phase, wall seconds, CPU seconds by thread name) for each phase: threads of one name
        (the core's shards) summed; the sampler's own time left out."""
        out = []
        for (_, t0, c0), (name, t1, c1) in itertools.pairwise(self.points):
            cpu: dict[str, float] = {}
            for tid, (thread, seconds) in c1.items():
                if thread != "phases-sampler":
                    cpu[thread] = cpu.get(thread, 0.0) + seconds - c0.get(tid, (thread, 0.0))[1]
            out.append((name, t1 - t0, cpu))
        return out


def run(capture: str, output: str, workers: int) -> Marks:
    marks = Marks()
    try:
        marks.mark("start")
        config = Config()
        setup = Setup.load(config)
        summary = Summary()
        with ExitStack() as stack:
            writer = SINKS["jsonl"].open_stream(stack.enter_context(RecordFile(output)))  # type: ignore[misc]

            def sink(rec: FlowRecord) -> None:
                summary.add_worst(rec)
                writer.write(rec)

            analyzer = Analyzer(config, on_record=sink, setup=setup, pcap_name=Path(capture).name, workers=workers,
                                meta_json=True)
            source = open_capture(capture)
            marks.mark("set-up")
            analyzer.run_capture(source)
            marks.mark("read")
            analyzer.close()
            writer.close()
            marks.mark("drain")
    finally:
        marks.stop()
    return marks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("-o", "--output", default=os.devnull, help="where the JSON lines go (default: discarded)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    try:
        marks = run(args.capture, args.output, args.workers)
    except (OSError, _core.CaptureError) as e:
        print(f"phases.py: {e}", file=sys.stderr)
        return 2
    total = marks.points[-1][1] - marks.points[0][1]
    print(f"{'phase':<8} {'wall s':>7}  CPU s by thread")
    for name, wall, cpu in marks.phases():
        threads = "  ".join(f"{n}={s:.2f}" for n, s in sorted(cpu.items(), key=lambda kv: -kv[1]) if s >= 0.005)
        print(f"{name:<8} {wall:7.3f}  {threads}")
    print(f"{'total':<8} {total:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
