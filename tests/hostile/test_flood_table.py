"""Flood resistance of the flow table, as fast tests (the full floods are benchmarks/flood.py).

A flood of distinct flows must cost the same per packet once the table is full: the core evicts
the oldest flow in O(1) (core/src/flow/table.rs), and live flows never pass `max_flows`.
"""

from __future__ import annotations

import struct
import time

from pcapkit import analyze_path, timed, write_pcap
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from portwatch.pipeline import Analyzer, Config


def _syn(i: int) -> bytes:
    """An IPv4 SYN from a distinct source (LINKTYPE_RAW), built by hand: fast for big floods."""
    tcp = struct.pack("!HHIIBBHHH", 1024 + i % 60000, 443, i, 0, 5 << 4, 0x02, 65535, 0, 0)
    src = struct.pack("!I", 0x0A000000 + i)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, src, b"\xc6\x12\x00\x01") + tcp


def test_eviction_cost_does_not_grow_with_evictions():
    count = [0]
    analyzer = Analyzer(Config(max_flows=20_000), on_record=lambda r: count.__setitem__(0, count[0] + 1))
    analyzer.run((1_700_000_000.0 + i * 1e-5, 101, _syn(i)) for i in range(20_000))  # fills the table
    assert analyzer.live_flows == 20_000 and count[0] == 0
    timings = []
    for start in (20_000, 60_000):  # 40,000 evictions each
        t0 = time.perf_counter()
        analyzer.run((1_700_000_000.0 + i * 1e-5, 101, _syn(i)) for i in range(start, start + 40_000))
        timings.append(time.perf_counter() - t0)
        assert analyzer.live_flows == 20_000
    stats = analyzer.close()
    assert stats.flows_evicted == 80_000 and count[0] == 100_000 and analyzer.live_flows == 0
    # The second 40,000 evictions cost about what the first did (a scan would grow with evictions).
    assert timings[1] < 3 * timings[0] + 1.0, timings


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
