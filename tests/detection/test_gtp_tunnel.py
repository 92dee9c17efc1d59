"""GTP-U (3GPP TS 29.281) through the whole pipeline: the tunnel's own UDP flow is reported beside
the flows it carries (as Zeek's conn.log has both), the inner flows carry `meta.encap` and the
tunnel's community ID, Teredo inside GTP-U is Teredo, and `--workers` changes nothing.

Crafted with scapy (no GTP daemon runs in a namespace here): G-PDUs carrying a Teredo router
solicitation behind an authentication indicator, a relay's answer behind an origin indication
seen before any request, an HTTP exchange, and a path-management echo on the tunnel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _engine import classify
from pcapkit import ether, timed, write_pcap
from scapy.contrib.gtp import GTP_U_Header, GTPHeader
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6ND_RS, IPv6
from scapy.packet import Raw

from portwatch.pipeline import Config, Setup, analyze_path
from portwatch.services import fallback_path

ENB, SGW = "198.51.100.7", "203.0.113.9"
UE, RELAY, WEB = "10.45.0.2", "192.0.2.53", "192.0.2.80"


def g_pdu(uplink: bool, inner: IP) -> bytes:
    src, dst = (ENB, SGW) if uplink else (SGW, ENB)
    return bytes(IP(src=src, dst=dst) / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=0x1001, gtp_type=255) / inner)


def teredo_auth(ip6: IPv6) -> bytes:
    # RFC 4380 5.1.1: indicator 0x0001, no client id, no authentication value, nonce, confirmation
    return b"\x00\x01\x00\x00" + bytes(range(8)) + b"\x00" + bytes(ip6)


def teredo_origin(ip6: IPv6) -> bytes:
    # RFC 4380 5.1.1: indicator 0x0000, obfuscated port and address
    return b"\x00\x00\xf4\x94\x9e\x3c\x8c\x3c" + bytes(ip6)


def capture(tmp_path: Path) -> Path:
    rs = IPv6(src="fe80::ffff:ffff:fffe", dst="ff02::2") / ICMPv6ND_RS()
    ra = IPv6(src="fe80::8000:f227:bec9:1c81", dst="fe80::ffff:ffff:fffe") / ICMPv6ND_RA()
    http_c = IP(src=UE, dst=WEB) / TCP(sport=41000, dport=80, flags="PA", seq=1, ack=1)
    http_s = IP(src=WEB, dst=UE) / TCP(sport=80, dport=41000, flags="PA", seq=1, ack=41)
    packets = [
        g_pdu(True, IP(src=UE, dst=RELAY) / UDP(sport=56528, dport=3544) / teredo_auth(rs)),
        g_pdu(False, IP(src=RELAY, dst=UE) / UDP(sport=3544, dport=56528) / teredo_origin(ra)),
        # a relay's answer to a client whose request this capture never saw
        g_pdu(False, IP(src=RELAY, dst="10.45.0.3") / UDP(sport=3544, dport=62069) / teredo_origin(ra)),
        g_pdu(True, IP(src=UE, dst=WEB) / TCP(sport=41000, dport=80, flags="S", seq=0)),
        g_pdu(False, IP(src=WEB, dst=UE) / TCP(sport=80, dport=41000, flags="SA", seq=0, ack=1)),
        g_pdu(True, http_c / b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        g_pdu(False, http_s / b"HTTP/1.1 204 No Content\r\n\r\n"),
        # TS 29.281 7.2.1: an echo request on the tunnel (not a G-PDU)
        bytes(IP(src=ENB, dst=SGW) / UDP(sport=2152, dport=2152) / GTPHeader(gtp_type=1, S=1, seq=7)),
    ]
    return write_pcap(tmp_path / "gtp.pcap", timed([ether(p) for p in packets], step=0.01))


def records(path: Path, workers: int = 1) -> list:
    config = Config(services_path=str(fallback_path()))
    out: list = []
    analyze_path(str(path), Setup.load(config), config, out.append, workers=workers)
    return out


def test_the_tunnel_and_its_flows_are_both_reported(tmp_path: Path) -> None:
    recs = records(capture(tmp_path))
    tunnels = [r for r in recs if r.protocol == "gtp"]
    assert len(tunnels) == 1
    gtp = tunnels[0]
    assert (gtp.transport, gtp.src_port, gtp.dst_port) == ("udp", 2152, 2152)
    assert {gtp.src_ip, gtp.dst_ip} == {ENB, SGW}
    assert gtp.packets_c2s + gtp.packets_s2c == 8  # every GTP-U datagram, the echo included
    assert "encap" not in gtp.meta
    inner = [r for r in recs if r is not gtp]
    assert sorted(r.protocol for r in inner) == ["http", "teredo", "teredo"]
    for r in inner:
        assert r.meta["encap"] == ["gtpu"]
        assert r.meta["tunnel_community_id"] == gtp.community_id
    # The tunnel's bytes are the inner packets and their GTP-U headers.
    inner_bytes = sum(r.bytes_c2s + r.bytes_s2c for r in inner)
    assert gtp.bytes_c2s + gtp.bytes_s2c > inner_bytes


def test_gtp_on_its_port_raises_nothing_above_info(tmp_path: Path) -> None:
    gtp = next(r for r in records(capture(tmp_path)) if r.protocol == "gtp")
    assert all(f.severity == "info" for f in gtp.findings), gtp.findings
    assert not {f.kind for f in gtp.findings} & {"port-mismatch", "tunnel", "cleartext-on-secure-port",
                                                   "encrypted-unknown"}


def test_workers_give_the_same_records(tmp_path: Path) -> None:
    path = capture(tmp_path)
    one = [r.as_dict() for r in records(path)]
    assert [r.as_dict() for r in records(path, workers=2)] == one


def test_near_misses_on_2152_are_not_gtp() -> None:
    echo = bytes(GTPHeader(gtp_type=1, S=1, seq=7))
    assert classify("udp", [echo], [], 2152, client_port=2152).protocol == "gtp"
    for data in (
        echo[:-1],  # length field one more than what follows
        echo + b"\0",  # one less
        bytes(GTP_U_Header(teid=1, gtp_type=255) / Raw(b"\x12" * 20)),  # a G-PDU carrying no IP
        b"\x48\x01\x00\x08" + bytes(8),  # GTPv2-C echo (port 2123's) on 2152
    ):
        d = classify("udp", [data], [], 2152, client_port=2152)
        assert d is None or d.protocol != "gtp", data.hex()


def gtp_v1_c(flags: int, kind: int, ies: bytes = b"") -> bytes:
    # TS 29.060 6: the length counts what follows the 8 mandatory bytes (sequence number, N-PDU
    # number and next extension type included)
    return bytes([flags, kind]) + (len(ies) + 4).to_bytes(2, "big") + bytes.fromhex("00000001" "0001" "00" "00") + ies


def gtp_v2_c(flags: int, kind: int, ies: bytes = b"") -> bytes:
    # TS 29.274 5.1: the length counts what follows the first 4 bytes (TEID, sequence, spare)
    return bytes([flags, kind]) + (len(ies) + 8).to_bytes(2, "big") + bytes.fromhex("00000001" "000001" "00") + ies


@pytest.mark.parametrize("header", [
    gtp_v1_c(0x36, 16, bytes(16)),  # v1 Create PDP Context Request, E and S flags
    gtp_v1_c(0x32, 27),  # v1 PDU Notification Request
    gtp_v2_c(0x48, 32, bytes(8)),  # v2 Create Session Request with a TEID
    gtp_v2_c(0x58, 33, bytes(8)) + gtp_v2_c(0x48, 96),  # v2 piggybacked (P flag)
    gtp_v2_c(0x4C, 95, bytes(8)),  # v2 Create Bearer Request, message priority
])
def test_gtp_control_headers_of_every_flag_combination(header: bytes) -> None:
    assert classify("udp", [header], [], 2123, client_port=2123).protocol == "gtp"


def test_a_gtp_control_port_datagram_of_no_gtp_header_is_not_gtp() -> None:
    # a message type TS 29.060 leaves unassigned (0x90), a length one short, and text
    for data in (gtp_v1_c(0x32, 0x90), gtp_v2_c(0x48, 32, bytes(8))[:-1], b"220 mail.example.test ESMTP\r\n"):
        d = classify("udp", [data], [], 2123, client_port=2123)
        assert d is not None and d.protocol != "gtp"
