"""NNTP from leafnode and Python's nntplib (captures/nntp-119.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "nntp-119.pcap"

def test_the_session_is_nntp_with_the_servers_greeting_as_banner() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned, r.state, r.findings) for r in records] == [
        ("nntp", 119, ["nntp"], "SF", [])]
    assert records[0].meta["banner"].startswith("Leafnode NNTP Daemon, version 1.12.0")
    assert bytes.fromhex(records[0].meta["server_head"]).startswith(b"200 ")
