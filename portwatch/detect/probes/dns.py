"""DNS probe: header plausibility, question and answers (RFC 1035 wire format).

Entry points:

- ``probe(data, from_client, *, tcp=False)``: `data` is one UDP datagram, or with ``tcp=True``
  the TCP stream prefix where each message carries a 2-byte length (RFC 1035 §4.2.2).
- ``probe_tcp(data, from_client)``: the same as ``probe(data, from_client, tcp=True)``.
- ``parse_message(data) -> dict | None``: the structural parser alone, without the unicast-DNS
  plausibility rules, for mDNS / LLMNR (same wire format; mDNS responses have no question).

Rules: QR must match the direction (queries from the client, responses from the server); opcode
QUERY, IQUERY, STATUS, NOTIFY, UPDATE or DSO; 1..4 questions (a response may carry none only as a
bare FORMERR/NOTIMP/REFUSED header); bounded record counts; names with compression-pointer loop
protection. For UDP every counted record must be present; over TCP a message cut by the detection
depth matches once its question is complete (MORE before that).

Meta: ``dns_query`` (first question name, presentation format), ``dns_qtype`` ("A", "TXT",
"TYPE65399"...), ``dns_qclass`` (only when not IN), ``dns_opcode`` (only when not QUERY),
``dns_rcode`` (responses: "NOERROR", "NXDOMAIN"...), ``dns_answers`` (responses: up to 16
strings like "A 192.0.2.1", "CNAME host.example.", "TXT \\"v=spf1 -all\\"").
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

from portwatch.model import NEED_MORE, NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MAX_INPUT = 65536 + 2
MAX_QUESTIONS = 4
MAX_ANSWERS_SHOWN = 16
MAX_RECORDS = 512  # records walked per message
MAX_POINTER_HOPS = 32
NAME_LIMIT = 1100  # presentation text of a 255-byte name with every byte escaped

QTYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO",
    15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC",
    33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS",
    44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3",
    51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP", 59: "CDS", 60: "CDNSKEY",
    61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF", 249: "TKEY",
    250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI",
    257: "CAA",
}  # fmt: skip
QCLASSES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
}  # fmt: skip


def type_name(value: int) -> str:
    return QTYPES.get(value, f"TYPE{value}")


_TEN_ZEROS = bytes(10)
_PLAIN = bytes(b for b in range(0x21, 0x7F) if b not in (0x2E, 0x5C))  # label bytes shown as they are


def _label_text(label: bytes) -> str:
    if not label.translate(None, _PLAIN):  # the usual label: nothing to escape, no per-byte loop
        return label.decode("ascii")
    out = []
    for b in label:
        if b in (0x2E, 0x5C):  # "." and "\" inside a label
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def read_name(msg: bytes, off: int) -> tuple[str, int] | None:
    """(presentation name, offset after the name in place) or None when malformed.

    Compression pointers must point strictly backwards of the label that holds them and are
    followed at most `MAX_POINTER_HOPS` times, so a loop cannot hang the parser.
    """
    labels: list[str] = []
    wire_len = 0
    end: int | None = None
    pos = off
    hops = 0
    while True:
        if pos >= len(msg):
            return None
        length = msg[pos]
        if length == 0:
            if end is None:
                end = pos + 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(msg):
                return None
            target = ((length & 0x3F) << 8) | msg[pos + 1]
            if end is None:
                end = pos + 2
            hops += 1
            if target >= pos or hops > MAX_POINTER_HOPS:
                return None
            pos = target
            continue
        if kind:
            return None  # 0x40 / 0x80 label types are not in use
        wire_len += length + 1
        if wire_len > 254 or pos + 1 + length > len(msg):
            return None
        labels.append(_label_text(msg[pos + 1 : pos + 1 + length]))
        pos += 1 + length
    return ((".".join(labels) + ".") if labels else "."), end


def _rdata_text(msg: bytes, rtype: int, start: int, rdlen: int) -> str:
    rdata = msg[start : start + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)  # the same text as ipaddress, six times faster
    if rtype == 28 and rdlen == 16:
        # inet_ntop's RFC 5952 text is ipaddress's except for the IPv4-mapped and -compatible
        # forms (::ffff:1.2.3.4), which keep ipaddress's spelling.
        if rdata[:10] == _TEN_ZEROS:
            return str(ipaddress.IPv6Address(rdata))
        return socket.inet_ntop(socket.AF_INET6, rdata)
    if rtype in (2, 5, 12, 39):
        name = read_name(msg, start)
        return name[0] if name else "?"
    if rtype == 15 and rdlen >= 3:
        name = read_name(msg, start + 2)
        return f"{struct.unpack_from('!H', msg, start)[0]} {name[0] if name else '?'}"
    if rtype == 33 and rdlen >= 7:
        prio, weight, port = struct.unpack_from("!HHH", msg, start)
        name = read_name(msg, start + 6)
        return f"{prio} {weight} {port} {name[0] if name else '?'}"
    if rtype in (16, 99):
        parts, i = [], 0
        while i < len(rdata) and len(parts) < 16:
            n = rdata[i]
            parts.append('"' + rdata[i + 1 : i + 1 + n].decode("utf-8", "replace") + '"')
            i += 1 + n
        return " ".join(parts)
    return f"({rdlen} bytes)"


def parse_message(data: bytes, *, partial: bool = False) -> dict[str, Any] | None:
    """Parse one DNS message (no TCP length prefix).

    Returns a dict with id, qr, opcode, aa, tc, rd, ra, ad, cd, rcode, the four counts,
    ``questions`` [(name, qtype, qclass)], ``answers`` [(name, type, class, ttl, text)] and
    ``complete`` (every counted record was present). None when the header or a question is
    malformed, or (unless `partial`) when a counted record is missing or overruns the message.
    """
    if len(data) < 12:
        return None
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, 0)
    msg: dict[str, Any] = {
        "id": ident,
        "qr": flags >> 15,
        "opcode": (flags >> 11) & 0xF,
        "aa": bool(flags & 0x0400),
        "tc": bool(flags & 0x0200),
        "rd": bool(flags & 0x0100),
        "ra": bool(flags & 0x0080),
        "ad": bool(flags & 0x0020),
        "cd": bool(flags & 0x0010),
        "rcode": flags & 0xF,
        "qdcount": qd,
        "ancount": an,
        "nscount": ns,
        "arcount": ar,
        "questions": [],
        "answers": [],
        "complete": False,
    }
    if qd > MAX_QUESTIONS:
        return None
    off = 12
    for _ in range(qd):
        name = read_name(data, off)
        if name is None or name[1] + 4 > len(data):
            return None
        qtype, qclass = struct.unpack_from("!HH", data, name[1])
        msg["questions"].append((name[0], qtype, qclass))
        off = name[1] + 4
    for index in range(min(an + ns + ar, MAX_RECORDS)):
        name = read_name(data, off)
        if name is None or name[1] + 10 > len(data):
            return msg if partial else None
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, name[1])
        start = name[1] + 10
        if start + rdlen > len(data):
            return msg if partial else None
        if index < an and len(msg["answers"]) < MAX_ANSWERS_SHOWN:
            msg["answers"].append((name[0], rtype, rclass, ttl, _rdata_text(data, rtype, start, rdlen)))
        off = start + rdlen
    msg["complete"] = an + ns + ar <= MAX_RECORDS
    return msg


def _question_ok(question: tuple[str, int, int]) -> bool:
    _, qtype, qclass = question
    return qtype != 0 and (qclass & 0x7FFF) in QCLASSES


def _header_ok(data: bytes, from_client: bool) -> bool:
    """Direction and header fields of a unicast DNS message (first 12 bytes, or fewer)."""
    if len(data) >= 3 and (data[2] >> 7) != (0 if from_client else 1):
        return False
    if len(data) >= 3 and ((data[2] >> 3) & 0xF) not in OPCODES:
        return False
    if len(data) < 12:
        return True
    _, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, 0)
    rcode = flags & 0xF
    if from_client:
        return rcode == 0 and 1 <= qd <= MAX_QUESTIONS and an <= 16 and ns <= 64 and ar <= 16
    if rcode not in RCODES or qd > MAX_QUESTIONS or an + ns + ar > 4096:
        return False
    return qd > 0 or (rcode in (1, 4, 5) and an + ns + ar == 0 and len(data) == 12)


def _meta(msg: dict[str, Any], from_client: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if msg["questions"]:
        name, qtype, qclass = msg["questions"][0]
        meta["dns_query"] = clean_text(name, NAME_LIMIT)
        meta["dns_qtype"] = type_name(qtype)
        if (qclass & 0x7FFF) != 1:
            meta["dns_qclass"] = QCLASSES.get(qclass & 0x7FFF, str(qclass))
    if msg["opcode"] != 0:
        meta["dns_opcode"] = OPCODES.get(msg["opcode"], str(msg["opcode"]))
    if not from_client:
        meta["dns_rcode"] = RCODES.get(msg["rcode"], str(msg["rcode"]))
        meta["dns_answers"] = [clean_text(f"{type_name(a[1])} {a[4]}") for a in msg["answers"]]
    return meta


def _probe_message(msg_bytes: bytes, from_client: bool, partial: bool) -> ProbeResult:
    if not _header_ok(msg_bytes, from_client):
        return NO_MATCH
    msg = parse_message(msg_bytes, partial=partial)
    if msg is None or not all(_question_ok(q) for q in msg["questions"]):
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, _meta(msg, from_client))


def probe(data: bytes, from_client: bool, *, tcp: bool = False) -> ProbeResult:
    """Classify one DNS datagram, or with ``tcp=True`` a length-prefixed TCP stream prefix."""
    try:
        data = bytes(data[:MAX_INPUT])
        if not tcp:
            if len(data) < 12:
                return NO_MATCH
            return _probe_message(data, from_client, partial=False)
        if len(data) < 2:
            return NEED_MORE
        length = struct.unpack_from("!H", data, 0)[0]
        if length < 12:
            return NO_MATCH
        body = data[2 : 2 + length]
        if not _header_ok(body, from_client):
            return NO_MATCH
        if len(body) < 12:
            return NEED_MORE
        if len(body) == length:
            return _probe_message(body, from_client, partial=False)
        result = _probe_message(body, from_client, partial=True)
        if result.status is ProbeStatus.NO:
            # the question itself may be what is cut: wait while the header holds
            return NEED_MORE if _question_prefix_ok(body) else NO_MATCH
        return result
    except Exception:  # a parser bug must never take the pipeline down
        return NO_MATCH


def _question_prefix_ok(body: bytes) -> bool:
    """True when the bytes after the header are a plausible beginning of the first question."""
    pos = 12
    while pos < len(body):
        length = body[pos]
        if length == 0:
            return len(body) < pos + 5  # the name ended; the fixed fields are what is missing
        if length & 0xC0:
            return False
        pos += 1 + length
    return True


def probe_tcp(data: bytes, from_client: bool) -> ProbeResult:
    """DNS over TCP: `data` is the stream prefix, messages prefixed by a 2-byte length."""
    return probe(data, from_client, tcp=True)
