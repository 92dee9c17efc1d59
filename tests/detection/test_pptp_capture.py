"""The PPTP control connection from pptpd and pptp-linux (captures/pptp-1723.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "pptp-1723.pcap"

def test_the_control_connection_is_pptp_from_both_start_control_connection_messages() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.transport, r.dst_port) for r in records] == [("pptp", "tcp", 1723)]
    r = records[0]
    for head, kind in ((r.meta["client_head"], 1), (r.meta["server_head"], 2)):
        data = bytes.fromhex(head)
        # length 156, control message (1), the magic cookie, Start-Control-Connection-Request/Reply
        assert data[:2] == b"\x00\x9c" and data[2:4] == b"\x00\x01" and data[4:8] == b"\x1a\x2b\x3c\x4d"
        assert int.from_bytes(data[8:10], "big") == kind
    assert "client bytes" in r.meta["evidence"] and "server bytes" in r.meta["evidence"]
    # Debian's /etc/services has no 1723 (IANA's pptp): the inventory note, nothing above info
    assert [(f.kind, f.severity) for f in r.findings] == [("unassigned-port", "info")]
