"""Flood resistance of the flow table, as fast tests (the full floods are benchmarks/flood.py).

A flood of distinct flows must cost the same per packet once the table is full: evicting the
oldest flow is O(1). A plain dict keeps one dummy slot per deleted key at its front, so finding
the oldest key after many evictions scans them all; this test catches that regression.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from pcapkit import analyze_path, timed, write_pcap
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from portwatch.capture.flows import TCP as TCP_PROTO
from portwatch.capture.flows import FlowTable


class _Flow:
    __slots__ = ("key_a", "key_b", "meta", "proto", "sides")

    def __init__(self, i: int) -> None:
        self.proto = TCP_PROTO
        self.sides = (SimpleNamespace(flow=self), SimpleNamespace(flow=self))
        self.key_a = i.to_bytes(12, "big")
        self.key_b = (i | 1 << 100).to_bytes(13, "big")
        self.meta: dict = {}


def test_eviction_cost_does_not_grow_with_evictions():
    removed = []
    table = FlowTable(50_000, lambda f, r: removed.append(r))
    for i in range(50_000):
        table.add(_Flow(i))
    flows = [_Flow(i) for i in range(50_000, 150_000)]
    t0 = time.perf_counter()
    for f in flows:
        table.add(f)
    elapsed = time.perf_counter() - t0
    assert table.evicted == 100_000 and len(removed) == 100_000 and table.count == 50_000
    # ~0.3 s with an O(1) eviction; the dict-front scan took ~6 s here.
    assert elapsed < 3.0, f"{elapsed:.2f} s for 100,000 evictions"


def test_syn_flood_beyond_max_flows_is_evicted_and_counted(tmp_path):
    frames = []
    for i in range(600):
        ip = IP(src=f"10.9.{i // 250}.{i % 250 + 1}", dst="198.18.0.1")
        frames.append(bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip
                            / TCP(sport=1024 + i, dport=443, flags="S", seq=i)))
    f = write_pcap(tmp_path / "syn.pcap", timed(frames, step=0.0001))
    records, stats = analyze_path(f, max_flows=100)
    assert len(records) == 600  # every flow is reported, evicted or not
    assert stats.flows_evicted == 500
    evicted = [r for r in records if r.meta.get("end_reason") == "evicted"]
    assert len(evicted) == 500
    assert all(r.meta.get("evicted") for r in evicted)
    assert [r.src_port for r in records[:500]] == list(range(1024, 1524))  # oldest first
