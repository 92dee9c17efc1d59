"""RADIUS from a real FreeRADIUS and radclient (captures/radius-1812.pcap), and off its ports."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tests.pcapkit import analyze_path, ether, timed, udp_exchange, write_pcap

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "radius-1812.pcap"


def radius(code: int, attrs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([kind, len(value) + 2]) + value for kind, value in attrs)
    return struct.pack(">BBH", code, 7, 20 + len(body)) + bytes(range(16)) + body


def test_freeradius_requests_and_replies() -> None:
    records, _ = analyze_path(CAPTURE)
    assert len(records) == 6 and {r.protocol for r in records} == {"radius"}
    by_reply = sorted((r.dst_port, r.meta.get("radius_request"), r.meta["radius_reply"]) for r in records)
    assert by_reply == [
        (1812, "access-request", "access-accept"),
        (1812, "access-request", "access-accept"),
        (1812, "access-request", "access-reject"),
        (1812, "status-server", "access-accept"),
        (1813, "accounting-request", "accounting-response"),
        (1813, "accounting-request", "accounting-response"),
    ]
    users = [r.meta.get("radius_user_name") for r in records if r.meta.get("radius_request") != "status-server"]
    assert users == ["pwuser"] * 5
    # 1812 and 1813 are radius and radius-acct in /etc/services: nothing to say about the ports.
    assert not [f for r in records for f in r.findings if f.kind in {"port-mismatch", "unassigned-port"}]


def test_radius_off_its_ports_is_named(tmp_path: Path) -> None:
    request = radius(1, [(1, b"nemo"), (2, b"\xa7" * 16), (4, bytes([192, 0, 2, 16]))])
    frames = udp_exchange([(True, request), (False, radius(2, []))], dport=40999)
    path = write_pcap(tmp_path / "r.pcap", timed([ether(f) for f in frames]))
    (rec,) = analyze_path(path)[0]
    assert (rec.protocol, rec.meta["radius_request"], rec.meta["radius_reply"]) == ("radius", "access-request",
                                                                                    "access-accept")
    assert rec.meta["radius_user_name"] == "nemo"


def test_a_stun_answer_is_not_radius(tmp_path: Path) -> None:
    # A STUN Binding success answer opens with 01 01 (RADIUS's Access-Request and an id) and its
    # length field counts the attributes after the 20-byte header: RADIUS's counts the whole
    # packet, so the two never agree on the datagram's length.
    txid = bytes(range(12))
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + txid
    mapped = b"\x00\x20\x00\x08\x00\x01\xa0\x81\x7c\x31\x0d\xd4"
    head = b"\x01\x01\x00\x14\x21\x12\xa4\x42" + txid + mapped
    fingerprint = (zlib.crc32(head) ^ 0x5354554E).to_bytes(4, "big")
    answer = head + b"\x80\x28\x00\x04" + fingerprint
    frames = udp_exchange([(True, request), (False, answer)], sport=40482, dport=443)
    path = write_pcap(tmp_path / "s.pcap", timed([ether(f) for f in frames]))
    (rec,) = analyze_path(path)[0]
    assert rec.protocol == "stun"
