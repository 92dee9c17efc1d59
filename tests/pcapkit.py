"""Test helpers: write classic pcap and pcapng files with any link type, byte order and precision.

Packets themselves are crafted with scapy (its job in this project: crafting test packets).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

CLIENT, SERVER = "10.1.0.2", "10.1.0.1"


def write_pcap(
    path: Path,
    frames: Iterable[tuple[float, bytes]],
    linktype: int = 1,
    big_endian: bool = False,
    nano: bool = False,
    snaplen: int = 65535,
) -> Path:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    scale = 1_000_000_000 if nano else 1_000_000
    for ts, data in frames:
        sec = int(ts)
        frac = round((ts - sec) * scale)
        out.append(struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))
    return path


def _block(btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def write_pcapng(path: Path, interfaces: list[int], packets: Iterable[tuple[int, float, bytes]],
                 extra_blocks: Iterable[bytes] = ()) -> Path:
    """interfaces: link types; packets: (interface id, ts, frame) as Enhanced Packet Blocks (us resolution)."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    parts = [shb]
    for lt in interfaces:
        parts.append(_block(1, struct.pack("<HHI", lt, 0, 65535)))
    parts.extend(extra_blocks)
    for ifid, ts, data in packets:
        t = round(ts * 1_000_000)
        parts.append(_block(6, struct.pack("<IIIII", ifid, t >> 32, t & 0xFFFFFFFF, len(data), len(data)) + data))
    path.write_bytes(b"".join(parts))
    return path


def unknown_block() -> bytes:
    return _block(0x0BAD, b"custom block body")


def tcp_session(
    client_payloads: list[bytes],
    server_payloads: list[bytes],
    sport: int = 40000,
    dport: int = 443,
    server_first: bool = False,
    client: str = CLIENT,
    server: str = SERVER,
    v6: bool = False,
) -> list[bytes]:
    """A complete TCP conversation (handshake, alternating data, FIN teardown) as IP packets."""
    ip = IPv6 if v6 else IP
    c2s = ip(src=client, dst=server)
    s2c = ip(src=server, dst=client)
    cseq, sseq = 1000, 5000
    pkts = [bytes(c2s / TCP(sport=sport, dport=dport, flags="S", seq=cseq))]
    pkts.append(bytes(s2c / TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq + 1)))
    cseq += 1
    sseq += 1
    pkts.append(bytes(c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq)))
    turns: list[tuple[bool, bytes]] = []
    cq, sq = list(client_payloads), list(server_payloads)
    client_turn = not server_first
    while cq or sq:
        if client_turn and cq:
            turns.append((True, cq.pop(0)))
        elif not client_turn and sq:
            turns.append((False, sq.pop(0)))
        client_turn = not client_turn
    for from_client, data in turns:
        if from_client:
            pkts.append(bytes(c2s / TCP(sport=sport, dport=dport, flags="PA", seq=cseq, ack=sseq) / data))
            cseq += len(data)
        else:
            pkts.append(bytes(s2c / TCP(sport=dport, dport=sport, flags="PA", seq=sseq, ack=cseq) / data))
            sseq += len(data)
    pkts.append(bytes(c2s / TCP(sport=sport, dport=dport, flags="FA", seq=cseq, ack=sseq)))
    pkts.append(bytes(s2c / TCP(sport=dport, dport=sport, flags="FA", seq=sseq, ack=cseq + 1)))
    pkts.append(bytes(c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1, ack=sseq + 1)))
    return pkts


def udp_exchange(payloads: list[tuple[bool, bytes]], sport: int = 50000, dport: int = 53) -> list[bytes]:
    out = []
    for from_client, data in payloads:
        if from_client:
            out.append(bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=dport) / data))
        else:
            out.append(bytes(IP(src=SERVER, dst=CLIENT) / UDP(sport=dport, dport=sport) / data))
    return out


def ether(ip_packet: bytes) -> bytes:
    ethertype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=ethertype)) + ip_packet


def timed(frames: list[bytes], start: float = 1_700_000_000.0, step: float = 0.001) -> list[tuple[float, bytes]]:
    return [(start + i * step, f) for i, f in enumerate(frames)]


def analyze_path(path: Path | str, **config_kw: object) -> tuple[list, object]:
    """Run the pipeline (the core) over one capture; return (flow records, capture stats)."""
    from portwatch.pipeline import Config, Setup
    from portwatch.pipeline import analyze_path as run

    config = Config(**config_kw)  # type: ignore[arg-type]
    records: list = []
    stats = run(str(path), Setup.load(config), config, records.append)
    return records, stats


def write_pcapng_mixed(path: Path, frames: Iterable[tuple[float, bytes]], *, big_endian: bool = False,
                       nano_second_interface: bool = False, obsolete_every: int = 0, simple_every: int = 0,
                       other_every: int = 0, new_section_at: int | None = None) -> Path:
    """Frames (Ethernet) as a pcapng with the variety real writers produce: either byte order; packets
    alternating between two interfaces of one link type (the second, optionally, with nanosecond
    resolution); every nth packet as an obsolete Packet Block or a Simple Packet Block (no time);
    name-resolution/statistics-like blocks between packets; a second section part way."""
    order = ">" if big_endian else "<"

    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        length = len(body) + 12
        return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)

    def header() -> list[bytes]:
        shb = block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
        idb0 = block(1, struct.pack(order + "HHI", 1, 0, 65535))
        tsresol = struct.pack(order + "HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack(order + "HH", 0, 0)
        idb1 = block(1, struct.pack(order + "HHI", 1, 0, 65535) + (tsresol if nano_second_interface else b""))
        return [shb, idb0, idb1]

    parts = header()
    for i, (ts, data) in enumerate(frames):
        if new_section_at is not None and i == new_section_at:
            parts.extend(header())
        if other_every and i % other_every == other_every - 1:
            parts.append(block(4, b"\x00\x00\x00\x00"))  # an empty name resolution block
        ifid = i & 1
        units = round(ts * (1_000_000_000 if ifid and nano_second_interface else 1_000_000))
        if simple_every and i % simple_every == simple_every - 1:
            parts.append(block(3, struct.pack(order + "I", len(data)) + data))
        elif obsolete_every and i % obsolete_every == obsolete_every - 1:
            parts.append(block(2, struct.pack(order + "HHIIII", ifid, 0, units >> 32, units & 0xFFFFFFFF, len(data),
                                              len(data)) + data))
        else:
            parts.append(block(6, struct.pack(order + "IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(data),
                                              len(data)) + data))
    path.write_bytes(b"".join(parts))
    return path
