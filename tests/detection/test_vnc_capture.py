"""RFB from TigerVNC's Xvnc and vncsnapshot (captures/vnc-5900.pcap): the version handshake, the
server's security pick, VNC Authentication's result and the desktop it opens."""

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


def test_the_handshake_says_versions_security_result_and_desktop_as_zeeks_rfb_log() -> None:
    records, _ = analyze_path(CAPTURE)
    facts = [{k: v for k, v in r.meta.items() if k.startswith("rfb_")} for r in records]
    # The server offers 3.8, vncsnapshot answers 3.3, so the server picks the type (RFC 6143 A.1).
    session = {"rfb_version": "3.3", "rfb_version_server": "3.8", "rfb_security": ["vnc-auth"]}
    opened = {**session, "rfb_auth": "success", "rfb_desktop": "pwsrv", "rfb_geometry": "64x48"}
    assert facts == [opened, opened, {**session, "rfb_auth": "failed"}]
    assert all("confirmed by the rfb probe" in r.meta["evidence"] for r in records)
