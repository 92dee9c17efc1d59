#!/usr/bin/env python3
"""Python's share of each flow record: what `portwatch analyze --format jsonl` does per record on
Python's thread once the core has made it.

    python benchmarks/record_work.py CAPTURE [--rounds 5]

The core analyses CAPTURE once and its records are kept (as `FlowRecord`s with the core's
`_core.Meta`, the JSON of each meta written ahead as the CLI asks). Then, per round, with a fresh
policy state (`Setup.load`, outside the timing): the services names and the policy's findings
(`pipeline.complete_record`), the summary's worst severity (`Summary.add_worst`: the exit status
is all a jsonl run asks of its summary) and the JSON line (`report.jsonl.record_bytes`) for every
record, timed by this thread's CPU clock. Prints the best round per record, overall and per
protocol. At the end of a capture with many flows open this work, not the core's, sets the end of
the run (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from portwatch.model import FlowRecord
from portwatch.pipeline import Analyzer, Setup, complete_record, open_capture
from portwatch.report.jsonl import record_bytes
from portwatch.report.summary import Summary


def records_of(path: str) -> tuple[Analyzer, list[FlowRecord]]:
    records: list[FlowRecord] = []
    analyzer = Analyzer(on_record=records.append, pcap_name=path, meta_json=True)
    analyzer._record = lambda rec: rec  # type: ignore[method-assign]  # keep the core's records as made
    analyzer.run_capture(open_capture(path))
    analyzer.close()
    return analyzer, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    analyzer, records = records_of(args.capture)
    # Timed a protocol at a time (a clock read per record would cost as much as some records):
    # each protocol's records keep their order, which is all the policy's state depends on.
    by_protocol: dict[str, list[FlowRecord]] = defaultdict(list)
    for rec in records:
        by_protocol[rec.protocol].append(rec)
    best_total = float("inf")
    best_by_protocol: dict[str, float] = defaultdict(lambda: float("inf"))
    for _ in range(args.rounds):
        setup, summary = Setup.load(analyzer.config), Summary()
        total = 0.0
        for protocol, group in by_protocol.items():
            start = time.thread_time()
            for rec in group:
                complete_record(rec, setup)
                summary.add_worst(rec)
                record_bytes(rec)
            spent = time.thread_time() - start
            total += spent
            best_by_protocol[protocol] = min(best_by_protocol[protocol], spent)
        best_total = min(best_total, total)
    count = {protocol: len(group) for protocol, group in by_protocol.items()}
    print(f"{len(records):,} records: {best_total * 1e6 / max(len(records), 1):.2f} us a record "
          f"(best of {args.rounds} rounds, CPU time of this thread)")
    for protocol in sorted(count, key=lambda p: -best_by_protocol[p]):  # most time first
        per_record = best_by_protocol[protocol] * 1e6 / count[protocol]
        print(f"  {protocol:12s} {count[protocol]:8,} records {per_record:7.2f} us")


if __name__ == "__main__":
    main()
