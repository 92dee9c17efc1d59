"""SNMP (RFC 1157, 3416, 3412): a BER SEQUENCE holding version, then community or v3 header, then a PDU.

`probe(data, from_client)`: one UDP datagram. v1/v2c: version 0 or 1, an OCTET STRING community,
a PDU tag 0xA0-0xA8 with request-id, error-status (0-18 in RFC 3416, some agents send more)
and error-index. v3: version 3, a
msgGlobalData SEQUENCE with msgID, msgMaxSize >= 484, msgFlags and msgSecurityModel.
The community is a password: it is never put into the metadata.

Meta: ``snmp_version`` ("1", "2c", "3"), ``snmp_pdu`` ("get", "response", "trap"...).
"""

from __future__ import annotations

from portwatch.detect.probes._ber import read_int, read_octets, read_tlv
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

PDUS = {
    0xA0: "get",
    0xA1: "get-next",
    0xA2: "response",
    0xA3: "set",
    0xA4: "trap",
    0xA5: "get-bulk",
    0xA6: "inform",
    0xA7: "trap-v2",
    0xA8: "report",
}
VERSIONS = {0: "1", 1: "2c", 3: "3"}


def _parse(data: bytes) -> dict | None:
    outer = read_tlv(data, 0)
    if outer is None or outer[0] != 0x30 or outer[1] + outer[2] != len(data):
        return None
    version = read_int(data, outer[1])
    if version is None or version[0] not in VERSIONS:
        return None
    meta = {"snmp_version": VERSIONS[version[0]]}
    if version[0] == 3:
        glob = read_tlv(data, version[1])
        if glob is None or glob[0] != 0x30:
            return None
        msg_id = read_int(data, glob[1])
        max_size = read_int(data, msg_id[1]) if msg_id else None
        if max_size is None or max_size[0] < 484:
            return None
        flags = read_octets(data, max_size[1])
        model = read_int(data, flags[1]) if flags and len(flags[0]) == 1 else None
        if model is None or not 1 <= model[0] <= 3:
            return None
        return meta
    community = read_octets(data, version[1])
    if community is None:
        return None
    pdu = read_tlv(data, community[1])
    if pdu is None or pdu[0] not in PDUS:
        return None
    meta["snmp_pdu"] = PDUS[pdu[0]]
    if pdu[0] == 0xA4:  # v1 trap: enterprise OID first
        oid = read_tlv(data, pdu[1])
        return meta if oid is not None and oid[0] == 0x06 else None
    request_id = read_int(data, pdu[1])
    status = read_int(data, request_id[1]) if request_id else None
    index = read_int(data, status[1]) if status else None
    if index is None or (pdu[0] != 0xA5 and not 0 <= status[0] <= 255):  # type: ignore[index]
        return None
    return meta


def probe(data: bytes, from_client: bool) -> ProbeResult:
    meta = _parse(data)
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)
