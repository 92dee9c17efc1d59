"""BGP between two BIRD 2 speakers (captures/bgp-179.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "bgp-179.pcap"

def test_the_ebgp_session_is_bgp_from_both_opens() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.state, r.assigned, r.findings) for r in records] == [
        ("bgp", 179, "SF", ["bgp"], [])]
    r = records[0]
    for head, asn in ((r.meta["client_head"], 65002), (r.meta["server_head"], 65001)):
        data = bytes.fromhex(head)
        # the all-ones marker, then an OPEN (type 1, version 4) naming the speaker's AS
        assert data[:16] == b"\xff" * 16 and data[18:20] == b"\x01\x04"
        assert int.from_bytes(data[20:22], "big") == asn
    assert "client bytes" in r.meta["evidence"] and "server bytes" in r.meta["evidence"]
