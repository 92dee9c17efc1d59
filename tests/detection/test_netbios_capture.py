"""NetBIOS name service from Samba's nmbd and nmblookup (captures/netbios-137.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "netbios-137.pcap"

def test_registrations_queries_and_a_broadcast_querys_unicast_answers() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {(r.protocol, r.dst_port, r.assigned[0], r.meta["netbios_type"]) for r in records} == {
        ("netbios", 137, "netbios-ns", "ns")}
    assert all(r.findings == [] for r in records)
    by_target = {(r.src_ip, r.dst_ip, r.state): r for r in records}
    # nmbd's registrations to the subnet's broadcast address: requests, so nmbd is their client
    assert ("10.77.0.1", "10.77.0.255", "S0") in by_target
    # the node status query asks for the wildcard name "*"
    assert sorted(r.meta["netbios_name"] for r in records if r.dst_ip == "10.77.0.1") == ["*", "PWSRV", "PWSRV"]
    # the broadcast query's answers come by unicast to the querying port: a flow of their own that
    # starts with a response (R bit set), so its sender is the server (RFC 1002 4.2.1.1)
    answers = [r for r in records if r.orientation == "inferred"]
    assert len(answers) == 1 and (answers[0].src_ip, answers[0].dst_ip) == ("10.77.0.2", "10.77.0.1")
    assert answers[0].packets_c2s == 0 and answers[0].packets_s2c == 2
