"""DHCP and DHCPv6 from dnsmasq and dhclient (captures/dhcp-67.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "dhcp-67.pcap"


def test_one_lease_of_each_family() -> None:
    records, _ = analyze_path(CAPTURE)
    got = sorted((r.protocol, r.src_port, r.dst_port, r.meta["dhcp_type"]) for r in records)
    # The client broadcasts (DISCOVER, REQUEST from 0.0.0.0; SOLICIT, REQUEST to ff02::1:2) and the
    # server answers to the leased or link-local address: each direction is a flow of its own.
    assert got == [("dhcp", 67, 68, "offer"), ("dhcp", 68, 67, "discover"),
                   ("dhcpv6", 546, 547, "solicit"), ("dhcpv6", 547, 546, "advertise")]
    four = {r.dst_ip: r for r in records if r.protocol == "dhcp"}
    assert four["255.255.255.255"].src_ip == "0.0.0.0"
    assert all((r.packets_c2s, r.packets_s2c) == (2, 0) for r in records)
    assert not [f for r in records for f in r.findings]
