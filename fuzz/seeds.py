"""Seed inputs for each fuzz target: valid (or nearly valid) inputs a mutator starts from.

Built in code rather than committed as files, so the seeds follow the parsers' formats as the
project changes. Sources: the shipped signatures and policy, the probe test vectors in
tests/probes/data, and packets crafted here with scapy.
"""

from __future__ import annotations

import gzip
import struct
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _tls_client_hello(sni: bytes = b"example.com") -> bytes:
    entry = b"\x00" + struct.pack("!H", len(sni)) + sni
    ext_sni = struct.pack("!HH", 0, len(entry) + 2) + struct.pack("!H", len(entry)) + entry
    alpn = b"\x02h2\x08http/1.1"
    ext_alpn = struct.pack("!HH", 16, len(alpn) + 2) + struct.pack("!H", len(alpn)) + alpn
    exts = ext_sni + ext_alpn + struct.pack("!HH", 43, 3) + b"\x02\x03\x04"
    body = b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!H", 4) + b"\x13\x01\x13\x02" + b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _payloads() -> list[bytes]:
    out = [
        _tls_client_hello(),
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n",
        b"220 mail.example.com ESMTP Postfix\r\n",
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
    ]
    data = REPO / "tests" / "probes" / "data"
    if data.is_dir():
        out += [p.read_bytes() for p in sorted(data.glob("*.bin"))]
    return out


@cache
def _ip_packets() -> list[bytes]:
    from scapy.layers.inet import GRE, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import Ether

    tls = _tls_client_hello()
    pkts = [
        IP(src="10.1.0.2", dst="10.1.0.1") / TCP(sport=40000, dport=443, flags="PA", seq=1) / tls,
        IP(src="10.1.0.2", dst="10.1.0.1") / TCP(sport=40000, dport=22, flags="S", seq=7),
        IP(src="10.1.0.2", dst="10.1.0.1") / UDP(sport=5353, dport=53) / _payloads()[5],
        IP(src="10.1.0.2", dst="10.1.0.1", flags="MF", frag=0, id=9) / UDP(sport=1, dport=53) / (b"x" * 16),
        IP(src="10.1.0.2", dst="10.1.0.1") / GRE() / IP(src="10.2.0.1", dst="10.2.0.2") / TCP(dport=80) / b"GET /",
        IP(src="10.1.0.2", dst="10.1.0.1") / UDP(sport=1, dport=4789) / b"\x08\x00\x00\x00\x00\x00\x01\x00"
        / Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.3.0.1", dst="10.3.0.2")
        / TCP(dport=22) / b"SSH-2.0-x\r\n",
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / TCP(sport=1, dport=80) / b"GET / HTTP/1.0",
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(m=1, id=5) / UDP(dport=53) / b"abcdefgh",
    ]
    return [bytes(p) for p in pkts]


@cache
def frames() -> list[tuple[int, bytes]]:
    """(link type, frame) pairs covering each decoder branch."""
    from scapy.layers.l2 import Dot1Q, Ether

    out: list[tuple[int, bytes]] = []
    for ip in _ip_packets():
        etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
        out.append((1, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=etype)) + ip))
        out.append((1, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=5, type=etype)) + ip))
        out.append((101, ip))
        out.append((0, struct.pack("<I", 2 if etype == 0x0800 else 30) + ip))
        out.append((113, bytes(14) + struct.pack("!H", etype) + ip))
        out.append((276, struct.pack("!H", etype) + bytes(18) + ip))
        out.append((9, struct.pack("!H", 0x21 if etype == 0x0800 else 0x57) + ip))
        out.append((104, b"\x0f\x00" + struct.pack("!H", etype) + ip))
    return out


def _pcap(frames: list[tuple[int, bytes]], linktype: int = 1) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, (_, f) in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f)
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _pcapng(frames: list[tuple[int, bytes]]) -> bytes:
    parts = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    parts.append(_block(1, struct.pack("<HHI", 1, 0, 65535) + struct.pack("<HHB", 9, 1, 9) + b"\0\0\0" + bytes(4)))
    parts.append(_block(1, struct.pack("<HHI", 101, 0, 65535)))
    parts.append(_block(0xBAD, b"unknown block"))
    for i, (lt, f) in enumerate(frames):
        parts.append(_block(6, struct.pack("<IIIII", 0 if lt == 1 else 1, 0, i, len(f), len(f)) + f))
    parts.append(_block(3, struct.pack("<I", len(frames[0][1])) + frames[0][1]))
    return b"".join(parts)


@cache
def captures() -> list[bytes]:
    eth = [f for f in frames() if f[0] == 1][:6]
    raw = [f for f in frames() if f[0] == 101][:4]
    pcap = _pcap(eth)
    return [pcap, _pcap(raw, 101), _pcapng(eth[:3] + raw[:2]), gzip.compress(pcap, mtime=0), pcap[:-7]]


def seeds(target: str) -> list[bytes]:
    from targets import LINKTYPES

    if target == "decode":
        return [bytes([LINKTYPES.index(lt)]) + f for lt, f in frames()]
    if target == "sources":
        return captures()
    if target == "reassembly":
        # depth hi/lo, ISN, SYN flag, then (op, delta hi, delta lo, length, payload) segments
        seg = b"\x40\x00\x00\x05hello" + b"\x40\x00\x07\x05world" + b"\x60\x00\x03\x05XXXXX" + b"\x40\x00\x05\x02, "
        return [b"\x01\x00" + b"\xff\xff\xff\xfe" + b"\x01" + seg, b"\x00\x10" + bytes(4) + b"\x00" + seg * 3]
    if target == "probes":
        return [bytes([0x40 | (0x80 if i % 2 else 0)]) + p for i, p in enumerate(_payloads())]
    if target == "signature":
        return [p.read_bytes() for p in sorted((REPO / "signatures").glob("*.toml"))]
    if target == "policy":
        policy = (REPO / "portwatch" / "data" / "default-policy.toml").read_bytes()
        site = b'min_severity = "low"\n[[allow]]\nprotocol = "ssh"\nport = 443\nhosts = ["10.0.0.0/8"]\n'
        return [policy, site]
    raise KeyError(target)
