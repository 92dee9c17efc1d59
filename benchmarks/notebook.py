"""What a notebook waits for: `portwatch.analyze(CAPTURE)` and the frames an `Analysis` derives, then
`portwatch.read()` of each output format `portwatch analyze` writes of the same capture.

    python benchmarks/notebook.py --capture benchmarks/data/mix-2m.pcap --repeat 3

Each step runs `--repeat` times in this process (as a notebook cell run again); the table gives the
best and the median wall seconds. The outputs for `read()` are written once, by the CLI, into a
temporary directory.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import portwatch

READ_FORMATS = ("jsonl", "csv", "parquet", "sqlite", "eve")


def timed(step: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    rows = 0
    for _ in range(args.repeat):
        seconds, analysis = timed(lambda: portwatch.analyze(args.capture, progress=False))
        record("analyze()", seconds)
        rows = len(analysis.flows)
        for name in ("findings", "servers"):
            record(f".{name}", timed(lambda a=analysis, name=name: getattr(a, name))[0])
        record(".summary()", timed(analysis.summary)[0])
    with tempfile.TemporaryDirectory(prefix="pw-notebook-") as tmp:
        for fmt in READ_FORMATS:
            out = Path(tmp) / f"flows.{fmt}"
            subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", fmt, "-o", str(out),
                            "--quiet", str(args.capture)], check=False)
            for _ in range(args.repeat):
                record(f"read() {fmt}", timed(lambda out=out: portwatch.read(out))[0])
    print(f"{args.capture}: {rows:,} flows, best / median of {args.repeat}")
    for name, values in times.items():
        print(f"  {name:<16} {min(values):7.2f} s / {statistics.median(values):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
