"""mDNS from avahi-daemon and dig (captures/mdns-5353.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "mdns-5353.pcap"


def test_announcements_and_one_shot_queries_are_mdns() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {r.protocol for r in records} == {"mdns"}
    # The daemon probes and announces its names to both multicast groups.
    groups = {r.dst_ip for r in records if r.src_ip == "10.77.0.1" or r.src_ip == "fd77::1"}
    assert groups == {"224.0.0.251", "ff02::fb"}
    # A one-shot query to the group is answered by unicast from the host (RFC 6762 5.1 and 6.7):
    # the answer is a flow of its own, oriented to the responder's 5353.
    asked = {(r.dst_ip, r.meta["dns_query"], r.meta["dns_qtype"]) for r in records if r.src_ip == "10.77.0.2"}
    assert ("224.0.0.251", "pwsrv.local.", "A") in asked and ("10.77.0.1", "pwsrv.local.", "A") in asked
    answers = [r for r in records if r.dst_ip == "10.77.0.1" and r.packets_s2c]
    assert {r.meta["dns_query"] for r in answers} == {"pwsrv.local.", "_workstation._tcp.local."}
    assert all(r.meta["dns_answer_count"] >= 1 for r in answers)
    assert not [f for r in records for f in r.findings]
