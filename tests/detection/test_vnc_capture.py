"""RFB from TigerVNC's Xvnc and vncsnapshot (captures/vnc-5900.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "vnc-5900.pcap"

def test_every_session_is_vnc_from_the_version_handshake() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.state) for r in records] == [("vnc", 5900, "SF")] * 3
    for r in records:
        assert bytes.fromhex(r.meta["server_head"]).startswith(b"RFB 003.008\n")
        assert bytes.fromhex(r.meta["client_head"]).startswith(b"RFB 003.003\n")
        # Debian's /etc/services has no 5900 (IANA's rfb): the inventory note, nothing above info
        assert [(f.kind, f.severity) for f in r.findings] == [("unassigned-port", "info")]
