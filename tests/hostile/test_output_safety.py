"""Attacker bytes in banners, SNI, HTTP hosts and DNS names never reach a terminal, a JSON consumer
or a spreadsheet raw: escapes and control characters are escaped, invalid UTF-8 is replaced, long
strings are cut, and CSV cells that a spreadsheet would evaluate are neutralised.

The capture is crafted, written to a file whose name is itself hostile, and run through
`portwatch analyze` in every text format.
"""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import sys
from pathlib import Path

import pytest
from _cli import analyze
from _conv import Conv
from pcapkit import ether, timed, udp_exchange, write_pcap

from portwatch.sanitize import MAX_TEXT

# OSC title set, SGR colour, CSI via the 8-bit C1 introducer (raw byte and UTF-8 encoded), a
# right-to-left override, invalid UTF-8, NUL and BEL.
EVIL = b"\x1b]0;owned\x07\x1b[31mred\x1b[0m\x9b2J\xc2\x9b\xe2\x80\xae\xff\xfe\x00bell\x07"
MEGA = 1 << 20
# What must never appear in any output: C0 (but the line structure), DEL, C1, bidi/zero-width.
RAW_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
FIELD_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
HOSTILE_NAME = '=HYPERLINK("evil.example?x")\x1b[2J.pcap'


def _tls_client_hello(sni: bytes) -> bytes:
    """A TLS 1.3 ClientHello record naming `sni` (any bytes), with ALPN h2/http1.1."""
    entry = b"\x00" + struct.pack("!H", len(sni)) + sni
    ext_sni = struct.pack("!HH", 0, len(entry) + 2) + struct.pack("!H", len(entry)) + entry
    alpn = b"\x02h2\x08http/1.1"
    ext_alpn = struct.pack("!HH", 16, len(alpn) + 2) + struct.pack("!H", len(alpn)) + alpn
    exts = ext_sni + ext_alpn + struct.pack("!HH", 43, 3) + b"\x02\x03\x04"
    body = b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!H", 4) + b"\x13\x01\x13\x02" + b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _frames() -> list[bytes]:
    frames: list[bytes] = []
    # 1. SSH on 443 whose banner carries escapes (a tunnel finding quotes the banner).
    ssh_c = b"SSH-2.0-x" + EVIL + b"\r\n"
    ssh_s = b"SSH-2.0-OpenSSH_9.2p1 " + EVIL + b"\r\n"
    frames += Conv(sport=40001, dport=443).handshake().s(0, ssh_s).c(0, ssh_c).close(len(ssh_c), len(ssh_s)).frames
    # 2. TLS on 22 with a hostile SNI (port-mismatch quotes the SNI).
    hello = _tls_client_hello(b"a" + EVIL + b".example.com")
    frames += Conv(sport=40002, dport=22).handshake().c(0, hello).close(len(hello), 0).frames
    # 3. HTTP on 443 (cleartext on a secure port) with a hostile Host and a megabyte Host after it.
    req = b"GET / HTTP/1.1\r\nHost: h" + EVIL + b".example\r\nUser-Agent: =cmd|' /C calc'!A0\r\n\r\n"
    frames += Conv(sport=40003, dport=443).handshake().c(0, req).close(len(req), 0).frames
    big = b"GET / HTTP/1.1\r\nHost: " + b"A" * MEGA + b"\r\n\r\n"
    conv = Conv(sport=40004, dport=80).handshake()
    for off in range(0, 64 * 1448, 1448):  # the first 64 segments: far beyond the reassembly depth
        conv.c(off, big[off : off + 1448])
    frames += conv.frames
    long_host = b"GET / HTTP/1.1\r\nHost: " + b"B" * 3000 + b"\r\n\r\n"  # complete within the depth
    frames += Conv(sport=40006, dport=80).handshake().c(0, long_host).close(len(long_host), 0).frames
    xss = _tls_client_hello(b"<script>alert(1)</script><img src=x onerror=alert(2)>.example")
    frames += Conv(sport=40007, dport=110).handshake().c(0, xss).close(len(xss), 0).frames
    # 4. DNS query whose first label holds the escapes.
    query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + bytes([len(EVIL)]) + EVIL
             + b"\x07example\x03com\x00\x00\x01\x00\x01")
    frames += [ether(p) for p in udp_exchange([(True, query)], sport=50001)]
    # 5. An SMTP banner line a megabyte long, in one jumbo datagram-sized run of segments.
    banner = b"220 " + b"\x1b[5m" * (MEGA // 4) + b"\r\n"
    conv = Conv(sport=40005, dport=25).handshake()
    for off in range(0, 16 * 1448, 1448):
        conv.s(off, banner[off : off + 1448])
    frames += conv.frames
    return frames


@pytest.fixture(scope="module")
def hostile_capture(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    return write_pcap(d / HOSTILE_NAME, timed(_frames()))


def _walk_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)


def _assert_safe_text(raw: bytes, line_end: str = "\n") -> str:
    text = raw.decode("utf-8").replace(line_end, "\n")  # strict: output is valid UTF-8
    bad = RAW_UNSAFE.search(text)
    assert bad is None, f"unsafe {bad.group()!r} at {bad.start()}: {text[max(0, bad.start() - 40):bad.start() + 40]!r}"
    return text


def test_jsonl_is_sanitised_and_bounded(tmp_path, hostile_capture):
    run = analyze(tmp_path, hostile_capture, extra=("--fail-on", "high"))
    assert "Traceback" not in run.stderr and run.code in (0, 1)
    _assert_safe_text((tmp_path / "out.jsonl").read_bytes())
    by_port = {r["src_port"]: r for r in run.records}
    assert set(by_port) >= {40001, 40002, 40003, 40004, 40005, 40006, 50001}
    for rec in run.records:
        assert rec["pcap"].startswith("=HYPERLINK") and "\\x1b" in rec["pcap"]
        for s in _walk_strings(rec):
            assert not FIELD_UNSAFE.search(s), s
        for key, value in rec["meta"].items():
            if isinstance(value, str) and not key.endswith("_head"):
                assert len(value) <= MAX_TEXT, (key, len(value))
        for f in rec["findings"]:
            assert len(f["message"]) <= 2048
    # the escapes are shown, visibly, not dropped: an analyst can see something was there
    assert "\\x1b]0;owned\\x07" in by_port[40002]["meta"]["sni"]
    assert "\ufffd" in by_port[40002]["meta"]["sni"]  # invalid UTF-8 replaced
    assert "\\u202e" in by_port[40002]["meta"]["sni"]
    host = by_port[40003]["meta"]["http_host"]
    assert host.startswith("h\\x1b]0;owned")
    assert by_port[40003]["protocol"] == "http"
    long_host = by_port[40006]["meta"]["http_host"]
    assert long_host == "B" * (MAX_TEXT - 1) + "…"
    # the megabyte header never completes inside the reassembly depth: no half value is reported
    assert by_port[40004]["protocol"] == "http" and "http_host" not in by_port[40004]["meta"]
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert max(len(line) for line in lines) < 8192  # no record grows with the attacker's string
    assert "\\x1b" in by_port[50001]["meta"]["dns_query"] or "\\027" in by_port[50001]["meta"]["dns_query"]
    assert by_port[40004]["bytes_c2s"] == 64 * 1448  # counted in full, inspected only to the depth


def test_console_carries_no_escape(tmp_path, hostile_capture):
    run = analyze(tmp_path, hostile_capture, fmt="console")
    assert "Traceback" not in run.stderr and run.code in (0, 1)
    proc_out = run.stdout.encode("utf-8")
    text = _assert_safe_text(proc_out)
    assert "\x1b" not in text and "\x07" not in text
    assert "owned" in text  # the hostile SNI/banner is shown, escaped
    assert "\\x1b" in text


def test_console_escapes_rich_markup(tmp_path):
    # "[bold red]" or "[link=...]" in a banner must print as text, not restyle the report.
    ssh = b"SSH-2.0-[link=http://evil.example]x[/link][blink]y\r\n"
    conv = Conv(dport=443).handshake().s(0, ssh).c(0, ssh).close(len(ssh), len(ssh))
    f = write_pcap(tmp_path / "markup.pcap", timed(conv.frames))
    run = analyze(tmp_path, f, fmt="console")
    assert "Traceback" not in run.stderr
    assert "SSH-2.0-[link=http://evil.example]x[/link][blink]y" in run.stdout


def test_csv_cells_are_neutralised(tmp_path, hostile_capture):
    run = analyze(tmp_path, hostile_capture, fmt="csv")
    assert "Traceback" not in run.stderr and run.code in (0, 1)
    raw = (tmp_path / "out.csv").read_bytes()
    text = _assert_safe_text(raw, line_end="\r\n")  # CSV's own record separator
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) >= 6
    for row in rows:
        for col, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (col, cell[:60])
            if cell.startswith("-"):
                float(cell)  # only a negative number may start with '-'
        assert row["pcap"].startswith("'=HYPERLINK")
        json.loads(row["meta"])
    ua = next(r for r in rows if r["src_port"] == "40003")
    assert "=cmd|" in ua["meta"]  # inside the JSON cell, which starts with '{': inert


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_formula_prefixes(value):
    from portwatch.report.csvout import safe_cell

    assert safe_cell(value) == "'" + value
    assert safe_cell("safe") == "safe" and safe_cell(-3) == -3


def test_error_messages_are_sanitised(tmp_path):
    bad = tmp_path / "evil\x1b]0;x\x07.pcap"
    bad.write_bytes(b"not a capture at all")
    run = analyze(tmp_path, bad)
    assert run.code == 2 and "\x1b" not in run.stderr and "\x07" not in run.stderr
    assert "evil\\x1b]0;x\\x07.pcap" in run.stderr


def test_pcapng_comment_free_of_influence(tmp_path):
    # pcapng options (comments, interface names) are never shown: a hostile one changes nothing.
    from pcapkit import _block

    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + struct.pack("<HH", 1, len(EVIL)) + EVIL)
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535) + struct.pack("<HH", 2, len(EVIL)) + EVIL)
    ssh = b"SSH-2.0-OpenSSH_9.2\r\n"
    frames = Conv(dport=22).handshake().s(0, ssh).c(0, ssh).close(len(ssh), len(ssh)).frames
    epbs = [_block(6, struct.pack("<IIIII", 0, 0, i, len(fr), len(fr)) + fr) for i, fr in enumerate(frames)]
    f = tmp_path / "c.pcapng"
    f.write_bytes(shb + idb + b"".join(epbs))
    run = analyze(tmp_path, f, fmt="console")
    assert run.code == 0 and "owned" not in run.stdout and "\x1b" not in run.stdout


def test_sqlite_stores_only_sanitised_text(tmp_path, hostile_capture):
    import sqlite3

    from pcapkit import analyze_path

    from portwatch.report.sqlite import SqliteWriter

    records, _ = analyze_path(hostile_capture)
    db = tmp_path / "flows.sqlite"
    writer = SqliteWriter(db)
    for rec in records:
        writer.write(rec)
    writer.close()
    con = sqlite3.connect(db)
    texts = []
    for table in ("flows", "findings"):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        for row in con.execute(f"SELECT * FROM {table}"):
            texts += [(table, c, v) for c, v in zip(cols, row, strict=True) if isinstance(v, str)]
    con.close()
    assert any(c == "meta" and "owned" in v for _, c, v in texts)
    for table, col, value in texts:
        assert not FIELD_UNSAFE.search(value), (table, col, value[:80])
        if col in ("meta", "findings"):
            for s in _walk_strings(json.loads(value)):
                assert not FIELD_UNSAFE.search(s)
        assert len(value) < 8192, (table, col, len(value))


def test_notebook_html_escapes_markup(hostile_capture):
    from portwatch import api

    analysis = api.analyze(hostile_capture, progress=False)
    page = analysis._repr_html_()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    assert not RAW_UNSAFE.search(page)
    sni = analysis.flows.set_index("src_port").loc[40007, "meta"]
    assert "<script>" in str(sni)  # the data keeps the text; only the HTML view escapes it


def test_signatures_check_echoes_file_names_sanitised(tmp_path):
    import subprocess

    f = tmp_path / "ok\x1b]0;owned\x07.toml"
    f.write_text('protocol = "okproto"\n[[match]]\nprefix = "OK"\n')
    out = subprocess.run([sys.executable, "-m", "portwatch", "signatures", "check", str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "ok\\x1b]0;owned\\x07.toml: ok (okproto, 1 match(es))" in out.stdout
