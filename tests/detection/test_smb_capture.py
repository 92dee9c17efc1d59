"""SMB and NetBIOS from Samba and smbclient/nmblookup (captures/smb-445.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

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
    # Each server answered in the version it was asked in: its answer is named apart. Samba chose
    # SMB 3.1.1 for smbclient, and refused every SMB1 dialect (index 0xFFFF): no SMB1 was spoken.
    assert [(r.meta["smb_version_server"], r.meta["smb_command_server"]) for r in direct] == [
        (2, "negotiate"), (2, "negotiate"), (1, "0x72")]
    assert [r.meta.get("smb_dialect_server") for r in direct] == ["3.1.1", "3.1.1", None]
    # On 139 a NetBIOS session request and its positive response open the session (RFC 1002
    # 4.3); the SMB2 that follows names the flow, as on 445 (nDPI's NetBIOS.SMBv23).
    (ssn,) = by_port(records, "tcp", 139)
    assert (ssn.protocol, ssn.meta["smb_command"], ssn.meta["smb_dialect_server"]) == ("smb", "negotiate", "3.1.1")
    # Name service: nmbd's broadcast registrations, nmblookup's name query for PWSRV and its node
    # status request, whose wildcard name is `*` padded with NULs.
    names = sorted(str(r.meta["netbios_name"]) for r in by_port(records, "udp", 137))
    assert names == ["*", "PWSRV", "PWSRV"]
    # nmbd's browser announcement: an SMB1 Trans (0x25) inside a NetBIOS datagram.
    (dgm,) = by_port(records, "udp", 138)
    assert (dgm.protocol, dgm.meta["smb_command"]) == ("smb", "0x25")
    assert not [f for r in records for f in r.findings if f.severity != "info"]


def smb1_negotiate(reply: bool, dialect_index: int = 0) -> bytes:
    """An SMB1 NEGOTIATE (MS-CIFS 2.2.4.52) in a session message: the request offering NT LM 0.12,
    or a successful response taking dialect `dialect_index` (0xFFFF: none)."""
    flags = b"\x88" if reply else b"\x08"
    header = b"\xffSMB\x72\0\0\0\0" + flags + bytes(22)
    if reply:
        body = bytes([17]) + dialect_index.to_bytes(2, "little") + bytes(32) + b"\0\0"
    else:
        body = b"\0" + (14).to_bytes(2, "little") + b"\x02NT LM 0.12\0\0"
    message = header + body
    return b"\0\0" + len(message).to_bytes(2, "big") + message


def test_a_server_that_takes_an_smb1_dialect_is_insecure(tmp_path: Path) -> None:
    for index, want in ((0, {("insecure-protocol", "medium")}), (0xFFFF, set())):
        frames = tcp_session([smb1_negotiate(False)], [smb1_negotiate(True, index)], dport=445)
        (rec,), _ = analyze_path(write_pcap(tmp_path / f"smb1-{index}.pcap", timed([ether(f) for f in frames])))
        assert (rec.protocol, rec.meta["smb_version"]) == ("smb", 1)
        assert {(f.kind, f.severity) for f in rec.findings} == want
        if want:
            assert rec.meta["smb_dialect_server"] == "1" and "SMB1 (MS17-010" in rec.findings[0].message
