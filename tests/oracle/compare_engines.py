"""Compare the Rust core's flow records with the Python engine's on the same captures.

    python tests/oracle/compare_engines.py CAPTURE... [--show N]

Prints per capture how many records each engine gave and how many differ, then the first
differences field by field. Records are matched by (transport, endpoints, ts_start).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from portwatch.capture.sources import CaptureError as PyCaptureError
from portwatch.capture.sources import CaptureSource
from portwatch.core_engine import CaptureError, CoreSetup, analyze_path
from portwatch.pipeline import Analyzer, Config, Setup


def python_records(path: str, setup: Setup, config: Config) -> tuple[list[dict], str | None]:
    out: list[dict] = []
    try:
        with CaptureSource(path) as source:
            analyzer = Analyzer(config, on_record=lambda r: out.append(r.as_dict()), setup=setup,
                                pcap_name=source.name)
            analyzer.run(analyzer.records_of(source))
            analyzer.close()
            return out, source.stats.error
    except PyCaptureError as exc:
        return out, str(exc)


def core_records(path: str, setup: Setup, config: Config, core: CoreSetup) -> tuple[list[dict], str | None]:
    out: list[dict] = []
    try:
        stats = analyze_path(path, setup, config, lambda r: out.append(r.as_dict()), core)
    except CaptureError as exc:
        return out, str(exc)
    return out, stats.error


def _key(rec: dict) -> tuple:
    return (rec["transport"], *sorted([(rec["src_ip"], rec["src_port"]), (rec["dst_ip"], rec["dst_port"])]),
            round(rec["ts_start"], 6))


def differences(py: list[dict], core: list[dict]) -> list[tuple[tuple, str, Any, Any]]:
    """(record key, field, python value, core value) for every field that differs."""
    by_py: dict[tuple, list[dict]] = {}
    for r in py:
        by_py.setdefault(_key(r), []).append(r)
    by_core: dict[tuple, list[dict]] = {}
    for r in core:
        by_core.setdefault(_key(r), []).append(r)
    out = []
    for key in sorted(set(by_py) | set(by_core), key=repr):
        a, b = by_py.get(key, []), by_core.get(key, [])
        if len(a) != len(b):
            out.append((key, "count", len(a), len(b)))
            continue
        for ra, rb in zip(a, b, strict=True):
            for field in sorted(set(ra) | set(rb)):
                va, vb = ra.get(field), rb.get(field)
                if field == "meta" and isinstance(va, dict) and isinstance(vb, dict):
                    for mk in sorted(set(va) | set(vb)):
                        if va.get(mk) != vb.get(mk):
                            out.append((key, f"meta.{mk}", va.get(mk), vb.get(mk)))
                elif va != vb:
                    out.append((key, field, va, vb))
    return out


def main(argv: list[str]) -> int:
    show = 10
    if "--show" in argv:
        i = argv.index("--show")
        show = int(argv[i + 1])
        del argv[i : i + 2]
    config = Config()
    setup = Setup.load(config)
    core = CoreSetup.of(setup, config)
    fields: Counter[str] = Counter()
    total_py = total_core = bad = 0
    for path in argv:
        py, py_err = python_records(path, setup, config)
        co, co_err = core_records(path, setup, config, core)
        diffs = differences(py, co)
        total_py += len(py)
        total_core += len(co)
        keys = {d[0] for d in diffs}
        bad += len(keys)
        for d in diffs:
            fields[d[1]] += 1
        if py_err != co_err:
            print(f"{path}: error differs: python {py_err!r} core {co_err!r}")
        if diffs:
            print(f"{path}: {len(py)} python, {len(co)} core records, {len(keys)} differ")
            for d in diffs[:show]:
                print(f"    {d[0]} {d[1]}: python {d[2]!r} core {d[3]!r}"[:300])
    print(f"total: {total_py} python, {total_core} core records, {bad} differing; fields: {dict(fields.most_common(20))}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
