"""Every labelled flow of the real captures in captures/: the protocol found from the bytes, and
the finding kinds above `info` (the informational notes are not labelled)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from pcapkit import analyze_path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
ROWS = list(csv.DictReader((CAPTURES / "labels.csv").open(encoding="utf-8")))


def _by_server(pcap: str) -> tuple[dict, dict]:
    records, stats = analyze_path(CAPTURES / pcap)
    assert stats.error is None
    protocols: dict = defaultdict(set)
    kinds: dict = defaultdict(set)
    for rec in records:
        key = (rec.transport, rec.dst_port)
        protocols[key].add(rec.protocol)
        kinds[key] |= {f.kind for f in rec.findings if f.severity != "info"}
    return protocols, kinds


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['pcap']}:{r['transport']}/{r['server_port']}")
def test_labelled_flow(row):
    protocols, kinds = _by_server(row["pcap"])
    key = (row["transport"], int(row["server_port"]))
    assert protocols[key] == {row["protocol"]}
    assert kinds[key] == set(filter(None, row["expected_findings"].split(";")))


def test_every_capture_is_labelled():
    labelled = {r["pcap"] for r in ROWS}
    assert labelled == {p.name for p in CAPTURES.glob("*.pcap")}
    assert len(labelled) >= 27
