"""Greetings, STARTTLS and login lines are signature data (`[conversation]`), so a user's file
teaches them for a protocol portwatch does not ship: here ManageSieve (RFC 5804), whose server
greets with capability lines and "OK", and whose client asks STARTTLS and logs in with
AUTHENTICATE "PLAIN"."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

from portwatch.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"

MANAGESIEVE = r"""
protocol = "managesieve"
description = "ManageSieve (RFC 5804)"
transports = ["tcp"]
ports = [4190]
cleartext_auth = true

[[match]]
direction = "server"
regex = '^"IMPLEMENTATION" "[\x20-\x7e]{1,200}"\r\n'
confidence = 0.9

[conversation]
greeting = '\A"IMPLEMENTATION" "([\x20-\x7e]{1,200})"\r\n'
starttls = '(?im)^STARTTLS\r?$'
starttls_ok = '(?m)^OK'
login = '(?im)^AUTHENTICATE "PLAIN"'
"""

GREETING = b'"IMPLEMENTATION" "Dovecot Pigeonhole"\r\n"SIEVE" "fileinto"\r\n"STARTTLS"\r\nOK "ready"\r\n'


def session(tmp_path: Path, name: str, client: list[bytes], server: list[bytes]) -> Path:
    ip = tcp_session(client, server, dport=4190, server_first=True)
    return write_pcap(tmp_path / name, timed([ether(p) for p in ip]))


def meta_of(tmp_path: Path, capture: Path) -> dict:
    sigs = tmp_path / "sigs"
    sigs.mkdir(exist_ok=True)
    (sigs / "managesieve.toml").write_text(MANAGESIEVE, encoding="utf-8")
    records, _ = analyze_path(capture, signature_dirs=(str(sigs),))
    (rec,) = records
    assert rec.protocol == "managesieve"
    return dict(rec.meta)


def test_a_users_conversation_table_reports_banner_and_starttls(tmp_path: Path) -> None:
    capture = session(tmp_path, "tls.pcap", [b"STARTTLS\r\n", b"\x16\x03\x01\x00\x05hello"],
                      [GREETING, b'OK "Begin TLS negotiation now."\r\n'])
    meta = meta_of(tmp_path, capture)
    assert meta["banner"] == "Dovecot Pigeonhole"
    assert meta["upgraded_to"] == "tls"
    assert "cleartext_login" not in meta


def test_a_users_conversation_table_reports_a_login_in_clear(tmp_path: Path) -> None:
    capture = session(tmp_path, "plain.pcap", [b'AUTHENTICATE "PLAIN" "AGJvYgBzZWNyZXQ="\r\n'],
                      [GREETING, b'OK "Logged in."\r\n'])
    meta = meta_of(tmp_path, capture)
    assert meta["cleartext_login"] is True
    assert "upgraded_to" not in meta
    # The credentials never reach the record: the client's first bytes stop at the login line's
    # keyword.
    assert bytes.fromhex(meta["client_head"]) == b'AUTHENTICATE "PLAIN"'


def test_without_the_table_nothing_is_reported(tmp_path: Path) -> None:
    capture = session(tmp_path, "plain.pcap", [b'AUTHENTICATE "PLAIN" "AGJvYgBzZWNyZXQ="\r\n'],
                      [GREETING, b'OK "Logged in."\r\n'])
    sigs = tmp_path / "bare"
    sigs.mkdir()
    (sigs / "managesieve.toml").write_text(MANAGESIEVE.split("[conversation]")[0], encoding="utf-8")
    (rec,) = analyze_path(capture, signature_dirs=(str(sigs),))[0]
    assert rec.protocol == "managesieve"
    assert not {"banner", "upgraded_to", "cleartext_login"} & set(rec.meta)


def test_no_password_of_a_real_ftp_login_reaches_any_output(tmp_path: Path) -> None:
    # captures/ftp-21.pcap: vsftpd, user pwcap, password pwcap-secret (captures/README.md).
    for fmt in ("jsonl", "csv", "eve", "console"):
        out = tmp_path / f"out.{fmt}"
        args = ["analyze", "--quiet", "--format", fmt, "-o", str(out), str(CAPTURES / "ftp-21.pcap")]
        CliRunner().invoke(main, args, catch_exceptions=False)
        text = out.read_text(encoding="utf-8")
        assert "pwcap-secret" not in text and b"pwcap-secret".hex() not in text, fmt
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    control = [r for r in records if r["protocol"] == "ftp"]
    assert control and all(r["meta"]["cleartext_login"] is True for r in control)
    assert {bytes.fromhex(r["meta"]["client_head"]) for r in control} == {b"USER pwcap\r\nPASS"}
