"""DNS probe (through the core's engine): dig queries and the responses dig accepted (recorded on loopback),
near-misses."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from _engine import MATCH, NO, probe
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data"


def load(name: str) -> bytes:
    return (DATA / f"{name}.bin").read_bytes()


def query(name: bytes, qtype: int = 1, flags: int = 0x0100, counts: tuple[int, int, int, int] = (1, 0, 0, 0)) -> bytes:
    qname = b"".join(bytes([len(label)]) + label for label in name.split(b".") if label) + b"\x00"
    return struct.pack("!HHHHHH", 0x1234, flags, *counts) + qname + struct.pack("!HH", qtype, 1)


def test_dig_udp_query_and_response():
    q = probe("dns", load("dig_a_query"), True)
    assert q.status == MATCH and q.meta == {"dns_query": "www.example.com.", "dns_qtype": "A"}
    r = probe("dns", load("dig_a_response"), False)
    assert r.status == MATCH
    assert r.meta == {
        "dns_query": "www.example.com.",
        "dns_qtype": "A",
        "dns_rcode": "NOERROR",
        "dns_answers": ["CNAME example.com.", "A 93.184.215.14"],
    }
    # direction is part of the structure
    assert probe("dns", load("dig_a_query"), False).status == NO
    assert probe("dns", load("dig_a_response"), True).status == NO


def test_dig_nxdomain():
    assert probe("dns", load("dig_txt_nx_query"), True).meta["dns_qtype"] == "TXT"
    r = probe("dns", load("dig_txt_nx_response"), False)
    assert r.meta["dns_rcode"] == "NXDOMAIN" and r.meta["dns_answers"] == []


def test_dig_tcp():
    q, a = load("dig_tcp_mx_query"), load("dig_tcp_mx_response")
    assert probe("dns_tcp", q, True).meta == {"dns_query": "example.com.", "dns_qtype": "MX"}
    assert probe("dns_tcp", a, False).meta["dns_answers"] == ["MX 10 mail.example.com."]
    assert probe("dns", q, True).status == NO  # the length prefix is not a DNS header
    # prefixes: not confirmed until the question is complete, then a match (a response cut by the depth)
    question_end = 2 + 12 + len(b"\x07example\x03com\x00") + 4
    for i in range(question_end):
        assert probe("dns_tcp", q[:i], True).status == NO, i
    assert probe("dns_tcp", a[:question_end], False).status == MATCH
    assert probe("dns_tcp", a[: question_end + 5], False).meta["dns_answers"] == []


def test_mdns_response_is_not_dns():
    """An mDNS response: no question, id 0, cache-flush class bit; the DNS probe refuses it."""
    rr = b"\x05local\x00" + struct.pack("!HHIH", 1, 0x8001, 120, 4) + bytes([192, 0, 2, 7])
    msg = struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + rr
    assert probe("dns", msg, False).status == NO


def test_names():
    # a pointer into the question, names with odd bytes
    q = query(b"a.b")
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 1, 2) + b"\xc0\x0c"
    resp = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + q[12:] + rr
    assert probe("dns", resp, False).meta["dns_answers"] == ["CNAME a.b."]
    odd = probe("dns", query(b"x\x1b[2J.y\x00z.com"), True).meta["dns_query"]
    assert odd == "x\\027[2J.y\\000z.com." and "\x1b" not in odd


def test_pointer_loops_are_refused():
    header = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0)
    assert probe("dns", header + b"\xc0\x0c" + b"\x00\x01\x00\x01", True).status == NO  # self
    assert probe("dns", header + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01", True).status == NO  # cycle
    assert probe("dns", header + b"\xc0\x20" + bytes(20), True).status == NO  # forwards
    assert probe("dns", header + b"\x01a" * 200 + b"\x00\x00\x01\x00\x01", True).status == NO  # name > 255


def test_qtypes_and_opcodes():
    assert probe("dns", query(b"t.example", 10), True).meta["dns_qtype"] == "NULL"
    assert probe("dns", query(b"t.example", 255), True).meta["dns_qtype"] == "ANY"
    assert probe("dns", query(b"t.example", 65399), True).meta["dns_qtype"] == "TYPE65399"
    assert probe("dns", query(b"example.com", 6, flags=0x2000), True).meta["dns_opcode"] == "NOTIFY"
    chaos = query(b"version.bind", 16).replace(b"\x00\x10\x00\x01", b"\x00\x10\x00\x03")
    assert probe("dns", chaos, True).meta["dns_qclass"] == "CH"


@pytest.mark.parametrize(
    "data",
    [
        query(b"example.com", flags=0x8180),  # a response from the client
        query(b"example.com", flags=0x1800),  # opcode 3 (unassigned)
        query(b"example.com", flags=0x7800),  # opcode 15
        query(b"example.com", counts=(0, 0, 0, 0)),  # no question
        query(b"example.com", counts=(9, 0, 0, 0)),  # too many questions
        query(b"example.com", counts=(1, 300, 0, 0)),  # answers in a query
        query(b"example.com", counts=(1, 0, 0, 1)),  # counted additional record missing
        query(b"example.com", 0),  # qtype 0
        query(b"example.com", flags=0x0103),  # rcode in a query
        query(b"example.com")[:-1],  # cut question
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x41abc\x00\x00\x01\x00\x01",  # 0x40 label
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),
        bytes(11),
    ],
)
def test_near_misses(data):
    assert probe("dns", data, True).status == NO


def test_tcp_near_misses():
    assert probe("dns_tcp", b"\x00\x05hello", True).status == NO  # shorter than a header
    assert probe("dns_tcp", b"\x00\x30\x12\x34\x81", True).status == NO  # QR set from the client
    assert probe("dns_tcp", b"\x00", True).status == NO  # (the probe wants more; nothing confirmed)
    assert probe("dns_tcp", b"SSH-2.0-OpenSSH_9.2\r\n", True).status == NO


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_never_raises(data, from_client, tcp):
    assert probe("dns_tcp" if tcp else "dns", data, from_client).status in (MATCH, NO)
    framed = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0) + data
    assert probe("dns", framed, False).status in (MATCH, NO)


@given(st.binary(min_size=16, max_size=16) | st.builds(lambda t: bytes(10) + t, st.binary(min_size=6, max_size=6))
       | st.builds(lambda a, b: a + bytes(8) + b, st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4)))
@settings(max_examples=50, deadline=None)
def test_aaaa_and_a_answers_read_as_ipaddress_writes_them(raw):
    import ipaddress

    q = query(b"example.com", 28)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + raw
    rr += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + raw[:4]
    resp = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 2, 0, 0) + q[12:] + rr
    assert probe("dns", resp, False).meta["dns_answers"] == [
        f"AAAA {ipaddress.IPv6Address(raw)}", f"A {ipaddress.IPv4Address(raw[:4])}"]


@given(st.binary(min_size=1, max_size=63))
@settings(max_examples=100, deadline=None)
def test_label_text_is_rfc1035_presentation_format(label):
    # RFC 1035 5.1: "\." and "\\" escaped, other non-printables as \DDD.
    want = "".join({0x2E: "\\.", 0x5C: "\\\\"}.get(b, chr(b) if 0x21 <= b <= 0x7E else f"\\{b:03d}") for b in label)
    assert probe("dns", query(b"")[:12] + bytes([len(label)]) + label + b"\x00\x00\x01\x00\x01", True).meta.get(
        "dns_query") == want + "."
