"""mDNS (RFC 6762) and LLMNR (RFC 4795): the DNS message layout with their own rules.

Unicast DNS rules do not fit: mDNS responses carry no question and queries may carry many, both
may be sent by either side; LLMNR answers carry the question but C/T flags are its own. So these
probes check the header and the first record only (bounded), and the signatures scope them to
the protocols' ports (5353, 5355), since the layout alone cannot tell the three apart.

Meta: ``dns_query`` and ``dns_qtype`` of the first question (or the first answer's name for an
mDNS announcement), ``dns_answers`` count as ``dns_answer_count``.
"""

from __future__ import annotations

import struct

from portwatch.detect.probes.dns import QCLASSES, read_name, type_name
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MAX_COUNT = 512


def _first_record(data: bytes, question: bool) -> tuple[str, int] | None:
    name = read_name(data, 12)
    if name is None or name[1] + (4 if question else 10) > len(data):
        return None
    rtype, rclass = struct.unpack_from("!HH", data, name[1])
    if rtype == 0 or (rclass & 0x7FFF) not in QCLASSES:
        return None
    return name[0], rtype


def _meta(data: bytes, llmnr: bool) -> dict | None:
    if len(data) < 12:
        return None
    _, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, 0)
    opcode, rcode = (flags >> 11) & 0xF, flags & 0xF
    if opcode != 0 or (rcode != 0 and not llmnr) or max(qd, an, ns, ar) > MAX_COUNT:
        return None
    if llmnr and qd != 1:  # RFC 4795 §2.1.1: exactly one question, in queries and responses
        return None
    if qd:
        first = _first_record(data, True)
    elif an or ns:
        first = _first_record(data, False)
    else:
        return None
    if first is None:
        return None
    meta = {"dns_query": clean_text(first[0], 300), "dns_qtype": type_name(first[1])}
    if flags >> 15:
        meta["dns_answer_count"] = an
    return meta


def probe_mdns(data: bytes, from_client: bool) -> ProbeResult:
    meta = _meta(data, llmnr=False)
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)


def probe_llmnr(data: bytes, from_client: bool) -> ProbeResult:
    meta = _meta(data, llmnr=True)
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)
