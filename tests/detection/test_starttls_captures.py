"""TLS begun inside a binary protocol's connection: LDAP's StartTLS (captures/ldaps-636.pcap, with
LDAPS beside it) and MySQL's SSLRequest (captures/mysql-tls-3306.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_ldap_starttls_is_an_upgrade_and_its_bind_no_cleartext_login() -> None:
    records, _ = analyze_path(CAPTURES / "ldaps-636.pcap")
    assert [(r.protocol, r.dst_port) for r in records] == [("tls", 636), ("tls", 636), ("ldap", 389)]
    starttls = records[2]
    assert starttls.meta["ldap_starttls"] is True and starttls.meta["upgraded_to"] == "tls"
    assert "cleartext_login" not in starttls.meta
    assert all(not r.findings for r in records)


def test_mysql_sslrequest_is_an_upgrade_and_a_native_login_is_no_cleartext_password() -> None:
    records, _ = analyze_path(CAPTURES / "mysql-tls-3306.pcap")
    assert [r.protocol for r in records] == ["mysql"] * 3
    assert [r.meta.get("upgraded_to") for r in records] == ["tls", None, None]
    # mysql_native_password sends a challenge-response scramble, not the password (mysql.toml)
    assert all("cleartext_login" not in r.meta and not r.findings for r in records)
