#!/usr/bin/env python3
"""Run fuzz targets under hypothesis for a time budget (the fallback where atheris is missing).

    python fuzz/hypo_main.py TARGET --seconds 600

Inputs are arbitrary bytes and mutations of the seeds (fuzz/seeds.py): byte flips, insertions,
deletions and truncations drawn by hypothesis, which also shrinks any failure to a small input.
Prints the number of executions at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import seeds  # noqa: E402
import targets  # noqa: E402


@st.composite
def mutated(draw: st.DrawFn, pool: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(max_size=16))
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 16))]
        else:
            del data[pos:]
    return bytes(data)


def inputs(name: str) -> st.SearchStrategy[bytes]:
    pool = seeds.seeds(name)
    return st.one_of(st.binary(max_size=4096), mutated(pool)) if pool else st.binary(max_size=4096)


def run(name: str, examples: int) -> int:
    """Run one target; returns the number of executions. Raises on the first (shrunk) failure."""
    target = targets.TARGETS[name]
    count = 0

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(inputs(name))
    def check(data: bytes) -> None:
        nonlocal count
        count += 1
        target(data)

    check()
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", choices=sorted(targets.TARGETS))
    ap.add_argument("--seconds", type=float, default=600)
    a = ap.parse_args()
    t0 = time.monotonic()
    n = run_for(a.target, a.seconds)
    print(f"{a.target}: {n} executions in {time.monotonic() - t0:.0f} s, no failure")


def run_for(name: str, seconds: float) -> int:
    # Batches of examples until the budget is spent: hypothesis' own loop has no time limit.
    total = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        total += run(name, examples=500)
    return total


if __name__ == "__main__":
    main()
