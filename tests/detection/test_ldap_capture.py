"""LDAP from slapd and the OpenLDAP clients (captures/ldap-389.pcap); a bind's password never
reaches a record."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "ldap-389.pcap"


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag, len(content)]) + content


def bind(dn: bytes, auth: bytes) -> bytes:
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, dn) + auth))


def test_slapd_search_and_simple_binds_in_clear() -> None:
    records, _ = analyze_path(CAPTURE)
    flows = sorted(records, key=lambda r: r.ts_start)
    assert [(r.protocol, r.meta["ldap_op"]) for r in flows] == [("ldap", "bind")] * 3
    # ldapsearch -x binds anonymously first (an empty DN and password): no login in clear.
    assert flows[0].meta["ldap_bind_dn"] == "" and "cleartext_login" not in flows[0].meta
    assert flows[0].findings == []
    # ldapwhoami -D ... -w: a simple bind, whether the password is right or not.
    for r in flows[1:]:
        assert r.meta["ldap_bind_dn"] == "cn=admin,dc=example,dc=test" and r.meta["cleartext_login"] is True
        assert [(f.kind, f.severity) for f in r.findings] == [("insecure-protocol", "high")]
        assert "(not shown)" in r.findings[0].message


@pytest.mark.parametrize("auth", [tlv(0x80, b"Secr3tPassw0rd"),
                                  tlv(0xA3, tlv(0x04, b"PLAIN") + tlv(0x04, b"\0u\0Secr3tPassw0rd"))],
                         ids=["simple", "sasl-plain"])
def test_a_short_dn_bind_keeps_no_credential_bytes(tmp_path: Path, auth: bytes) -> None:
    # With a four-letter DN the first 32 bytes of the stream reach 16 bytes into the credentials.
    frames = tcp_session([bind(b"cn=a", auth)], [bytes.fromhex("300c02010161070a010004000400")], dport=389)
    (rec,) = analyze_path(write_pcap(tmp_path / "bind.pcap", timed([ether(f) for f in frames])))[0]
    assert rec.protocol == "ldap" and rec.meta["ldap_bind_dn"] == "cn=a"
    text = repr(rec.as_dict())
    assert b"Secr3t".hex() not in text and "Secr3t" not in text
    assert rec.meta["client_head"] == bind(b"cn=a", auth)[:16].hex()
