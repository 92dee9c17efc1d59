"""Redis AUTH from redis-server with requirepass and redis-cli (captures/redis-auth-6379.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "redis-auth-6379.pcap"


def test_a_password_sent_in_clear_is_a_login_whatever_the_server_answered() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port) for r in records] == [("redis", 6379)] * 5
    answers = [bytes.fromhex(r.meta["server_head"]).split(b"\r\n", 1)[0].split(b" ", 1)[0] for r in records]
    assert answers == [b"+OK", b"+OK", b"+OK", b"-WRONGPASS", b"-NOAUTH"]
    logins = [bool(r.meta.get("cleartext_login")) for r in records]
    assert logins == [True, True, True, True, False]
    for r, login in zip(records, logins, strict=True):
        assert [(f.kind, f.severity) for f in r.findings] == ([("insecure-protocol", "high")] if login else [])
        # the head stops at the AUTH command: the password is never kept
        head = bytes.fromhex(r.meta["client_head"])
        assert b"pw-secret" not in head and b"wrong" not in head
