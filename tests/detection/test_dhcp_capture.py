"""DHCP and DHCPv6 from dnsmasq and dhclient (captures/dhcp-67.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "dhcp-67.pcap"


def test_one_lease_of_each_family() -> None:
    records, _ = analyze_path(CAPTURE)
    # The client broadcasts (DISCOVER, REQUEST from 0.0.0.0; SOLICIT, REQUEST to ff02::1:2) and the
    # server answers to the leased or link-local address: each direction is a flow of its own. The
    # answers' flows start with the server's message, whose type (BOOTREPLY, ADVERTISE) says who
    # sent it: the server is the server there too, its answer `dhcp_type_server`.
    got = sorted((r.protocol, r.src_port, r.dst_port, r.orientation, r.meta.get("dhcp_type"),
                  r.meta.get("dhcp_type_server"), r.packets_c2s, r.packets_s2c) for r in records)
    assert got == [("dhcp", 68, 67, "handshake", "discover", None, 2, 0),
                   ("dhcp", 68, 67, "inferred", None, "offer", 0, 2),
                   ("dhcpv6", 546, 547, "handshake", "solicit", None, 2, 0),
                   ("dhcpv6", 546, 547, "inferred", None, "advertise", 0, 2)]
    four = {r.dst_ip: r for r in records if r.protocol == "dhcp"}
    assert four["255.255.255.255"].src_ip == "0.0.0.0"
    assert four["10.77.0.1"].src_ip == "10.77.0.137"  # the leased address
    assert {tuple(r.assigned) for r in records} == {("bootps",), ("dhcpv6-server",)}
    assert not [f for r in records for f in r.findings]
