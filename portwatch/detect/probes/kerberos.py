"""Kerberos v5 (RFC 4120): an application-tagged message whose first field is pvno 5.

`probe(data, from_client)`: UDP datagram; `probe_tcp`: the TCP stream, whose messages carry a
4-byte length (RFC 4120 §7.2.2). Requests (AS-REQ, TGS-REQ, AP-REQ...) open with [1] pvno;
replies and KRB-ERROR with [0] pvno and [1] msg-type, which must equal the application tag.

Meta: ``krb_msg`` ("as-req", "tgs-rep", "krb-error"...), ``krb_realm`` when it comes before
anything variable (requests: req-body realm is deep inside, so only replies and errors carry it).
"""

from __future__ import annotations

import struct

from portwatch.detect.probes._ber import read_int, read_tlv
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

MESSAGES = {
    10: "as-req",
    11: "as-rep",
    12: "tgs-req",
    13: "tgs-rep",
    14: "ap-req",
    15: "ap-rep",
    20: "krb-safe",
    21: "krb-priv",
    22: "krb-cred",
    30: "krb-error",
}
REQUESTS = (10, 12)


def _parse(data: bytes) -> dict | None:
    outer = read_tlv(data, 0)
    if outer is None or outer[0] & 0xE0 != 0x60:
        return None
    app = outer[0] & 0x1F
    if app not in MESSAGES:
        return None
    seq = read_tlv(data, outer[1])
    if seq is None or seq[0] != 0x30:
        return None
    first = read_tlv(data, seq[1])
    if first is None:
        return None
    # KDC-REQ numbers its fields from [1] (pvno, msg-type); replies, errors and AP messages from [0].
    want_first = 0xA1 if app in REQUESTS else 0xA0
    if first[0] != want_first:
        return None
    pvno = read_int(data, first[1])
    if pvno is None or pvno[0] != 5:
        return None
    second = read_tlv(data, pvno[1])
    if second is None or second[0] != want_first + 1:
        return None
    msg_type = read_int(data, second[1])
    if msg_type is None or msg_type[0] != app:
        return None
    return {"krb_msg": MESSAGES[app]}


def probe(data: bytes, from_client: bool) -> ProbeResult:
    meta = _parse(data)
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)


def probe_tcp(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 8:
        return NO_MATCH
    (length,) = struct.unpack_from("!I", data, 0)
    if length & 0x80000000 or length < 16:
        return NO_MATCH
    return probe(data[4:], from_client)
