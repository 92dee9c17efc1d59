"""The munin node protocol from munin-node (captures/munin-4949.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "munin-4949.pcap"

def test_both_connections_are_munin_from_the_nodes_banner() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned, r.findings) for r in records] == [("munin", 4949, ["munin"], [])] * 2
    for r in records:
        assert bytes.fromhex(r.meta["server_head"]).startswith(b"# munin node at ")
    commands = [bytes.fromhex(r.meta["client_head"]).split(b"\n", 1)[0] for r in records]
    assert commands == [b"cap multigraph", b"list"]
