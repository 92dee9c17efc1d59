"""The core reads an IP packet the same inside an Ethernet frame as bare (LINKTYPE_RAW).

Anything the Ethernet path got wrong would be silent (a wrong key, a negative byte count, a
malformed packet taken as good). Each case sends the same IP packets twice, inside Ethernet frames
and bare, through the core, and compares the flows and counters that come out.
"""

from __future__ import annotations

import struct
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.model import FlowRecord
from portwatch.pipeline import Analyzer, Config, Setup
from portwatch.services import fallback_path

CONFIG = Config(services_path=str(fallback_path()))
ETHERNET, RAW = 1, 101


@cache
def setup() -> Setup:
    return Setup.load(CONFIG)


def outcome(linktype: int, frames: list[bytes]) -> tuple:
    records: list[FlowRecord] = []
    analyzer = Analyzer(CONFIG, on_record=records.append, setup=setup())
    analyzer.run((float(i), linktype, f) for i, f in enumerate(frames))
    stats = analyzer.close()
    flows = sorted(
        (r.transport, r.src_ip, r.src_port, r.dst_ip, r.dst_port, r.packets_c2s, r.packets_s2c, r.bytes_c2s,
         r.bytes_s2c, r.meta.get("client_head"), r.meta.get("server_head"))
        for r in records
    )
    return flows, stats.malformed, stats.non_ip


def transport_header(proto: int, sport: int, dport: int, doff: int, flags: int, ulen_delta: int,
                     payload: bytes, seq: int = 1000) -> bytes:
    if proto == 6:
        return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, doff << 4, flags, 65535, 0, 0) + payload
    return struct.pack("!HHHH", sport, dport, max(0, 8 + len(payload) + ulen_delta), 0) + payload


packets = st.fixed_dictionaries({
    "v6": st.booleans(),
    "proto": st.sampled_from([6, 17]),
    "sport": st.sampled_from([443, 53, 40000, 2152, 4789, 1]),
    "dport": st.sampled_from([443, 53, 22, 40001, 2152, 4789]),
    "doff": st.integers(0, 15),
    "flags": st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x04]),
    "ulen_delta": st.integers(-12, 12),
    "len_delta": st.integers(-70, 12),
    "payload": st.binary(max_size=48),
    "cut": st.integers(0, 80),
})


def ip_packet(p: dict) -> bytes:
    body = transport_header(p["proto"], p["sport"], p["dport"], p["doff"] or 5, p["flags"], p["ulen_delta"],
                            p["payload"], p.get("seq", 1000))
    if p["v6"]:
        plen = max(0, len(body) + p["len_delta"])
        head = struct.pack("!IHBB", 6 << 28, plen, p["proto"], 64) + bytes(range(16)) + bytes(range(16, 32))
    else:
        total = max(0, 20 + len(body) + p["len_delta"])
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, p["proto"], 0, b"\x0a\x00\x00\x01",
                           b"\xc6\x12\x00\x02")
    pkt = head + body
    return pkt[: len(pkt) - p["cut"]] if p["cut"] < len(pkt) else pkt


def ethernet(pkt: bytes) -> bytes:
    ethertype = 0x86DD if pkt[0] >> 4 == 6 else 0x0800
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + pkt


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, min_size=1, max_size=4))
def test_ethernet_equals_raw_ip(specs):
    pkts = [ip_packet(p) for p in specs]
    # Replies too, so both directions of a flow go through the look-up.
    pkts += [ip_packet({**p, "sport": p["dport"], "dport": p["sport"]}) for p in specs]
    assert outcome(ETHERNET, [ethernet(p) for p in pkts]) == outcome(RAW, pkts)


def test_ipv6_tcp_and_udp_over_ethernet_count_payload():
    syn = ip_packet({"v6": True, "proto": 6, "sport": 40000, "dport": 443, "doff": 5, "flags": 0x02,
                     "ulen_delta": 0, "len_delta": 0, "payload": b"", "cut": 0})
    # Two segments out of order: the core must read the sequence numbers from the TCP header.
    seg = {"v6": True, "proto": 6, "sport": 40000, "dport": 443, "doff": 5, "flags": 0x18, "ulen_delta": 0,
           "len_delta": 0, "cut": 0}
    second = ip_packet({**seg, "payload": b"llo", "seq": 1006})
    first = ip_packet({**seg, "payload": b"\x16\x03\x01he", "seq": 1001})
    dns = ip_packet({"v6": True, "proto": 17, "sport": 40000, "dport": 53, "doff": 5, "flags": 0,
                     "ulen_delta": 0, "len_delta": 0, "payload": b"x" * 12, "cut": 0})
    flows, malformed, _ = outcome(ETHERNET, [ethernet(p) for p in (syn, second, first, dns)])
    assert malformed == 0
    assert [(f[0], f[1], f[4], f[5], f[7]) for f in flows] == [
        ("tcp", "1:203:405:607:809:a0b:c0d:e0f", 443, 3, 8),
        ("udp", "1:203:405:607:809:a0b:c0d:e0f", 53, 1, 12),
    ]
    assert flows[0][9] == b"\x16\x03\x01hello".hex()  # reassembled in sequence order
