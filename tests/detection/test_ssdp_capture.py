"""SSDP from minidlna and upnpc (captures/ssdp-1900.pcap): a device's announcements to the group, a
search, and the device's answer by unicast."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest
from scapy.layers.inet import IP, UDP

from tests.pcapkit import analyze_path, ether, timed, write_pcap

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "ssdp-1900.pcap"
GROUP = "239.255.255.250"


def payloads() -> list[tuple[str, int, str, int, bytes]]:
    """(src, sport, dst, dport, payload) of every datagram, read by dpkt (the oracle)."""
    out = []
    with CAPTURE.open("rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            udp = ip.data
            out.append((dpkt.utils.inet_to_str(ip.src), udp.sport, dpkt.utils.inet_to_str(ip.dst), udp.dport,
                        bytes(udp.data)))
    return out


def test_announcements_a_search_and_its_unicast_answer() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {r.protocol for r in records} == {"ssdp"}
    by_dst = {(r.dst_ip, r.src_ip): r for r in records}
    datagrams = payloads()
    notify = by_dst[(GROUP, "10.77.0.1")]
    assert notify.packets_c2s == sum(1 for d in datagrams if d[4].startswith(b"NOTIFY * "))
    search = by_dst[(GROUP, "10.77.0.2")]
    assert search.packets_c2s == sum(1 for d in datagrams if d[4].startswith(b"M-SEARCH * "))
    # The answer goes from the device to the port that searched: a flow that starts with the reply,
    # whose device is its server (the 200 OK is only ever the server's).
    (answer,) = [r for r in records if r.dst_ip != GROUP]
    assert (answer.dst_ip, answer.dst_port, answer.src_port) == ("10.77.0.1", 1900, search.src_port)
    assert (answer.orientation, answer.packets_c2s, answer.packets_s2c) == ("inferred", 0, 1)
    assert [f for r in records for f in r.findings] == []


def test_a_device_answering_from_a_high_port_is_not_an_unexplained_server(tmp_path: Path) -> None:
    # Many devices answer a search from a port of their own choosing (UPnP Device Architecture 1.1
    # §1.3.3 asks only that the answer reach the searching port): the same answer from 49152.
    (reply,) = [d[4] for d in payloads() if d[4].startswith(b"HTTP/1.1 200 OK")]
    pkt = bytes(IP(src="10.77.0.1", dst="10.77.0.2") / UDP(sport=49152, dport=46747) / reply)
    (rec,), _ = analyze_path(write_pcap(tmp_path / "answer.pcap", timed([ether(pkt)])))
    assert (rec.protocol, rec.dst_ip, rec.dst_port, rec.orientation) == ("ssdp", "10.77.0.1", 49152, "inferred")
    assert rec.findings == []
