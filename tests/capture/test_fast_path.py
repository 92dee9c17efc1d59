"""The pipeline's Ethernet fast paths (IPv4 and IPv6) must agree with the general decoder.

`Analyzer.run` reads Ethernet + IPv4/IPv6 + TCP/UDP frames by byte indexing instead of calling
`capture.decode`; anything it gets wrong would be silent (a wrong key, a negative byte count, a
malformed packet taken as good). Each case sends the same IP packet twice: inside an Ethernet
frame (the fast path) and as LINKTYPE_RAW (the general decoder), and compares what comes out.
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
    analyzer.run((float(i), linktype, f, 0, len(f)) for i, f in enumerate(frames))
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


@settings(max_examples=400, deadline=None)
@given(st.lists(packets, min_size=1, max_size=4))
def test_fast_path_equals_general_decoder(specs):
    pkts = [ip_packet(p) for p in specs]
    # Replies too, so both directions of a flow go through the look-up.
    pkts += [ip_packet({**p, "sport": p["dport"], "dport": p["sport"]}) for p in specs]
    assert outcome(ETHERNET, [ethernet(p) for p in pkts]) == outcome(RAW, pkts)


def test_ipv6_tcp_and_udp_take_the_fast_path_and_count_payload():
    syn = ip_packet({"v6": True, "proto": 6, "sport": 40000, "dport": 443, "doff": 5, "flags": 0x02,
                     "ulen_delta": 0, "len_delta": 0, "payload": b"", "cut": 0})
    # Two segments out of order: the fast path must read the sequence numbers from the TCP header.
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


@settings(max_examples=400, deadline=None)
@given(st.lists(packets, min_size=1, max_size=8))
def test_chunk_fast_path_takes_only_what_the_decoder_reads_the_same(specs):
    # portwatch.batch decodes whole chunks with numpy (capture/fast_path.py): a frame it takes must
    # be one the decoder reads as a well-formed TCP/UDP packet with the same transport, TCP flags
    # and payload length; a malformed frame must be left to the loop.
    import numpy as np

    from portwatch.capture.decode import MALFORMED, decode
    from portwatch.capture.fast_path import HEAD, fast_path_facts

    frames = [ethernet(ip_packet(p)) for p in specs]
    head = np.zeros((len(frames), HEAD), dtype=np.uint8)
    for i, f in enumerate(frames):
        head[i, : min(len(f), HEAD)] = np.frombuffer(f[:HEAD], dtype=np.uint8)
    caplen = np.array([len(f) for f in frames], dtype=np.int32)
    facts = fast_path_facts(head, caplen, ETHERNET)
    for i, f in enumerate(frames):
        pkt = decode(ETHERNET, f, 0, len(f))
        if not (facts.v4[i] or facts.v6[i]):
            continue
        assert pkt is not None and pkt is not MALFORMED and pkt[0] in (6, 17), f.hex()
        proto, _src, _dst, _sport, _dport, flags, _seq, _buf, poff, pend, _encap = pkt
        assert (int(facts.proto[i]), int(facts.payload[i])) == (proto, pend - poff), f.hex()
        assert int(facts.flags[i]) == (flags if proto == 6 else 0), f.hex()
        assert bool(facts.v6[i]) == (f[12:14] == b"\x86\xdd")


_KEYS = st.lists(st.one_of(st.binary(min_size=12, max_size=12), st.binary(min_size=36, max_size=36)), min_size=1,
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(keys=_KEYS, shards=st.integers(2, 7))
def test_shard_numbers_of_frames_equal_shard_of_their_keys(keys: list[bytes], shards: int) -> None:
    # The chunk counter skips other shards' packets by shard_numbers; the loop's test is shard_of.
    import numpy as np

    from portwatch.capture.fast_path import HEAD, V4_KEY_AT, V6_KEY_AT, shard_numbers
    from portwatch.capture.flows import shard_of

    head = np.zeros((len(keys), HEAD), dtype=np.uint8)
    v6 = np.array([len(k) == 36 for k in keys])
    for row, key in enumerate(keys):
        at = V6_KEY_AT if len(key) == 36 else V4_KEY_AT
        head[row, at : at + len(key)] = np.frombuffer(key, dtype=np.uint8)
    assert shard_numbers(head, v6, shards).tolist() == [shard_of(k, shards) for k in keys]
