"""SMB and NetBIOS from Samba and smbclient/nmblookup (captures/smb-445.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "smb-445.pcap"


def by_port(records: list, transport: str, port: int) -> list:
    return sorted((r for r in records if (r.transport, r.dst_port) == (transport, port)), key=lambda r: r.ts_start)


def test_samba_sessions_and_name_service() -> None:
    records, _ = analyze_path(CAPTURE)
    # Direct hosting on 445: two SMB2 sessions (share list, file read), then a client asking for
    # SMB1 only, whose NEGOTIATE (0x72) the server refuses.
    direct = by_port(records, "tcp", 445)
    assert [(r.protocol, r.meta["smb_version"]) for r in direct] == [("smb", 2), ("smb", 2), ("smb", 1)]
    assert direct[-1].meta["smb_command"] == "0x72"
    # Each server answered in the version it was asked in: its answer is named apart.
    assert [(r.meta["smb_version_server"], r.meta["smb_command_server"]) for r in direct] == [
        (2, "negotiate"), (2, "negotiate"), (1, "0x72")]
    # On 139 the session opens with a NetBIOS session request: the flow is named by that, as the
    # labelled corpus names such flows.
    (ssn,) = by_port(records, "tcp", 139)
    assert (ssn.protocol, ssn.meta["netbios_type"]) == ("netbios", "ssn")
    # Name service: nmbd's broadcast registrations and nmblookup's node status request, whose
    # wildcard name is `*` padded with NULs.
    names = sorted(str(r.meta["netbios_name"]) for r in by_port(records, "udp", 137))
    assert names == ["*", "PWSRV"]
    # nmbd's browser announcement: an SMB1 Trans (0x25) inside a NetBIOS datagram.
    (dgm,) = by_port(records, "udp", 138)
    assert (dgm.protocol, dgm.meta["smb_command"]) == ("smb", "0x25")
    assert not [f for r in records for f in r.findings if f.severity != "info"]
