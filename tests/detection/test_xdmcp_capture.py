"""XDMCP from xdm and Xvfb -query (captures/xdmcp-177.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "xdmcp-177.pcap"

def test_query_and_willing_are_xdmcp_over_both_address_families() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned, r.findings) for r in records] == [("xdmcp", 177, ["xdmcp"], [])] * 2
    assert sorted(":" in r.dst_ip for r in records) == [False, True]
    for r in records:
        # version 1, opcode Query (2) from the X server; Willing (5) naming the host from xdm
        assert bytes.fromhex(r.meta["client_head"])[:4] == b"\x00\x01\x00\x02"
        assert bytes.fromhex(r.meta["server_head"])[:4] == b"\x00\x01\x00\x05"
        assert b"pwsrv" in bytes.fromhex(r.meta["server_head"])
