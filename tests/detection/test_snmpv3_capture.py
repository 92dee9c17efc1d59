"""SNMPv3 from net-snmp (captures/snmpv3-161.pcap): USM users at two security levels, a wrong
passphrase and an unknown user, each request after its engine discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "snmpv3-161.pcap"


def test_each_flow_says_its_user_and_the_level_after_discovery() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {(r.protocol, r.dst_port, r.meta["snmp_version"]) for r in records} == {("snmp", 161, "3")}
    # The discovery every flow opens with is noAuthNoPriv and names no user: the level is the
    # session's, from the first message that names one.
    assert [(r.meta["snmp_user"], r.meta["snmp_security"]) for r in records] == [
        ("pwadmin", "authPriv"), ("pwadmin", "authPriv"), ("pwguest", "noAuthNoPriv"),
        ("pwadmin", "authPriv"), ("nosuchuser", "noAuthNoPriv")]


def test_authentication_and_privacy_lift_the_insecure_note() -> None:
    # snmp.toml: insecure, secure_when snmp_security = authPriv (RFC 3414, 3826)
    records, _ = analyze_path(CAPTURE)
    for r in records:
        notes = [f for f in r.findings if f.kind == "insecure-protocol"]
        if r.meta["snmp_security"] == "authPriv":
            assert not notes
        else:
            assert [f.severity for f in notes] == ["info"]
