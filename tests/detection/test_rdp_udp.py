"""RDP over UDP (MS-RDPEUDP 3.1.5.1.1/3.1.5.1.2) through the detection engine: the client's SYN and
the server's SYN+ACK datagrams, built field by field from the specification (no RDP-UDP server runs
on Linux: xrdp and FreeRDP's server speak RDP over TCP only)."""

from __future__ import annotations

import struct

from _engine import classify

SYN, ACK, CORRELATION_ID, SYNEX = 0x0001, 0x0004, 0x0800, 0x1000


def datagram(snsourceack: int, flags: int, tail: bytes = b"", mtus: tuple[int, int] = (1232, 1232)) -> bytes:
    # RDPUDP_FEC_HEADER, RDPUDP_SYNDATA_PAYLOAD, optional payloads, zero padding to 1232 bytes
    head = struct.pack("!IHH", snsourceack, 64, flags) + struct.pack("!IHH", 0x512F9004, *mtus)
    return (head + tail).ljust(1232, b"\0")


def test_syn_and_syn_ack_are_rdp() -> None:
    syn = datagram(0xFFFFFFFF, SYN | CORRELATION_ID | SYNEX, bytes(range(16)) + bytes(16) + b"\0\x01\0\x02")
    syn_ack = datagram(0x512F9004, SYN | ACK | SYNEX, b"\0\x01\0\x02")
    d = classify("udp", [syn], [syn_ack], 3389, client_port=53211)
    assert d is not None and d.protocol == "rdp"
    assert d.meta["rdp_udp_version"] == 2
    # Either side alone is enough (a capture that starts late, or one-way).
    assert classify("udp", [syn], [], 3389, client_port=53211).protocol == "rdp"
    assert classify("udp", [], [syn_ack], 3389, client_port=53211).protocol == "rdp"


def test_rdp_udp2_version_is_reported() -> None:
    syn = datagram(0xFFFFFFFF, SYN | SYNEX, b"\0\x01\x01\x01" + bytes(range(32)))
    assert classify("udp", [syn], [], 3389, client_port=53211).meta["rdp_udp_version"] == 3


def test_near_misses_are_not_rdp() -> None:
    for data in (
        datagram(0xFFFFFFFF, SYN)[:1231],  # not padded to 1232
        datagram(0xFFFFFFFF, SYN, mtus=(1500, 1500)),  # MTUs outside 1132..1232
        datagram(0, SYN),  # a SYN's snSourceAck is -1
        datagram(0xFFFFFFFF, SYN | 0x0008),  # data in a SYN
    ):
        d = classify("udp", [data], [], 3389, client_port=53211)
        assert d is None or d.protocol != "rdp"
