"""LLMNR from llmnrd and llmnr-query (captures/llmnr-5355.pcap): queries to the IPv4 and IPv6 groups,
answered by unicast."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "llmnr-5355.pcap"


def datagrams() -> int:
    with CAPTURE.open("rb") as fh:
        return sum(1 for _ in dpkt.pcap.Reader(fh))


def test_group_queries_and_their_unicast_answers() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {r.protocol for r in records} == {"llmnr"}
    assert sum(r.packets_c2s + r.packets_s2c for r in records) == datagrams() == 7
    queries = [r for r in records if r.packets_c2s]
    answers = [r for r in records if r.packets_s2c]
    # Four queries to 224.0.0.252 and ff02::1:3; the last, for a name nobody has, is not answered.
    assert sorted((r.dst_ip, r.meta["dns_query"], r.meta["dns_qtype"]) for r in queries) == [
        ("224.0.0.252", "nosuchhost.", "A"), ("224.0.0.252", "pwsrv.", "A"), ("224.0.0.252", "pwsrv.", "ANY"),
        ("ff02::1:3", "pwsrv.", "AAAA")]
    # Each answer comes by unicast from the responder's 5355 to the querier's port: a flow that starts
    # with the reply. Its QR bit makes the responder the server (neither port is in Debian's
    # /etc/services, so the ports cannot tell).
    assert len(answers) == 3
    for r in answers:
        assert (r.dst_port, r.orientation, r.packets_c2s) == (5355, "inferred", 0)
        assert (r.src_port, r.src_ip) in {(q.src_port, q.src_ip) for q in queries}
    assert sorted(r.meta["dns_answer_count"] for r in answers) == [1, 2, 3]
    # Only the inventory note for a port /etc/services does not list, where the server answered.
    assert {(f.kind, f.severity) for r in records for f in r.findings} == {("unassigned-port", "info")}
    assert all(not r.findings for r in queries)
