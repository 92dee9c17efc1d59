"""LDAP (RFC 4511) and CLDAP: LDAPMessage ::= SEQUENCE { messageID, protocolOp, ... }.

`probe(data, from_client)`: the first message of a TCP stream or one UDP datagram. The message ID
is a small non-negative INTEGER and the operation an application tag the direction may send
(requests from the client, responses from the server).

Meta: ``ldap_op`` ("bind", "search", "extended"...), ``ldap_starttls`` when an extended request
names the StartTLS OID, ``cleartext_login`` when a bind request carries a non-empty simple
password (the password itself is never stored), ``ldap_bind_dn`` (sanitised).
"""

from __future__ import annotations

from portwatch.detect.probes._ber import read_int, read_octets, read_tlv
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

REQUESTS = {
    0x60: "bind",
    0x42: "unbind",
    0x63: "search",
    0x66: "modify",
    0x68: "add",
    0x4A: "delete",
    0x6C: "modify-dn",
    0x6E: "compare",
    0x50: "abandon",
    0x77: "extended",
}
RESPONSES = {
    0x61: "bind",
    0x64: "search-entry",
    0x65: "search-done",
    0x73: "search-ref",
    0x67: "modify",
    0x69: "add",
    0x6B: "delete",
    0x6D: "modify-dn",
    0x6F: "compare",
    0x78: "extended",
    0x79: "intermediate",
}
STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"


def probe(data: bytes, from_client: bool) -> ProbeResult:
    outer = read_tlv(data, 0)
    if outer is None or outer[0] != 0x30 or outer[2] < 5:
        return NO_MATCH
    msg_id = read_int(data, outer[1])
    if msg_id is None or not 0 <= msg_id[0] < 2**31:
        return NO_MATCH
    op = read_tlv(data, msg_id[1])
    table = REQUESTS if from_client else RESPONSES
    if op is None or op[0] not in table:
        return NO_MATCH
    if op[1] + op[2] > outer[1] + outer[2]:
        return NO_MATCH
    meta: dict = {"ldap_op": table[op[0]]}
    if op[0] == 0x60:
        version = read_int(data, op[1])
        if version is None or version[0] not in (2, 3):
            return NO_MATCH
        name = read_octets(data, version[1])
        if name is not None:
            meta["ldap_bind_dn"] = clean_text(name[0], 256)
            auth = read_tlv(data, name[1])
            if auth is not None and auth[0] == 0x80 and auth[2] > 0:
                meta["cleartext_login"] = True
    elif op[0] == 0x77:
        oid = read_octets(data, op[1], tag=0x80)
        if oid is not None and oid[0] == STARTTLS_OID:
            meta["ldap_starttls"] = True
    return ProbeResult(ProbeStatus.MATCH, meta)
