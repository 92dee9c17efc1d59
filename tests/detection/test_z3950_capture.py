"""Z39.50 from YAZ's test server and yaz-client (captures/z3950-210.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "z3950-210.pcap"


def test_both_sessions_are_z3950_confirmed_by_the_servers_initialize_response() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.state, r.assigned) for r in records] == [("z3950", 210, "SF", ["z3950"])] * 2
    for r in records:
        # InitializeRequest [APPLICATION 20] from the client, InitializeResponse [21] back
        assert bytes.fromhex(r.meta["client_head"])[:1] == b"\xb4"
        assert bytes.fromhex(r.meta["server_head"])[:1] == b"\xb5"
        # the request decided; the response, matching the signature too, is in the evidence
        assert "client bytes match" in r.meta["evidence"] and "server bytes match" in r.meta["evidence"]
        assert r.confidence > 0.95
        assert r.findings == []
