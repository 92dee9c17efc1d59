"""NFS from nfs-ganesha to libnfs's tools (captures/nfs-2049.pcap): NFSv4, then NFSv3 with its
portmapper and MOUNT calls, every connection from a reserved port as AUTH_SYS clients bind."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwatch.signatures import load_signatures
from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "nfs-2049.pcap"


def test_every_onc_rpc_program_is_nfs_with_the_program_it_called() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {r.protocol for r in records} == {"nfs"}
    programs = {(r.dst_port, r.meta["rpc_program"], r.meta["rpc_version"]) for r in records}
    assert programs == {(2049, "nfs", 4), (2049, "nfs", 3), (111, "portmap", 2), (20048, "mount", 3)}
    assert all(r.meta["rpc_reply"] == "accepted" and r.orientation == "handshake" for r in records)


def test_reserved_source_ports_of_an_auth_sys_client_raise_nothing() -> None:
    # libnfs binds ports below 1024 (RFC 2623 section 2.1, port monitoring), MOUNT's included,
    # which sits on a port no fixed list of trusted-port services can know.
    records, _ = analyze_path(CAPTURE)
    assert all(r.src_port < 1024 for r in records)
    kinds = {(r.dst_port, f.kind, f.severity) for r in records for f in r.findings}
    # Debian's /etc/services has no mountd (IANA's 20048): the inventory note, nothing else
    assert kinds == {(20048, "unassigned-port", "info")}


def test_the_trust_in_reserved_ports_is_signature_data() -> None:
    sigs = {s.protocol: s for s in load_signatures()}
    assert sigs["nfs"].reserved_source_port and sigs["rsh"].reserved_source_port
    assert not sigs["http"].reserved_source_port  # captures/http-privport-80.pcap still raises it
