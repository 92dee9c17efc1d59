"""SMB over the NetBIOS session service alone: Samba on tcp/139 and smbclient -p 139
(captures/smb-139.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "smb-139.pcap"


def test_the_session_request_opens_smb_and_the_flow_is_named_by_smb() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port) for r in records] == [("smb", 139), ("smb", 139)]
    for r in records:
        assert (r.meta["smb_version"], r.meta["smb_command"]) == (2, "negotiate")
        assert r.meta["smb_dialect_server"] == "3.1.1"
        # the heads are the session request (0x81) and the positive response (0x82)
        assert r.meta["client_head"].startswith("81000044") and r.meta["server_head"].startswith("82000000")
        assert not r.findings
