"""MongoDB wire protocol: the 16-byte MsgHeader and the start of the message body.

`probe(data, from_client)`: messageLength (little-endian, 16 bytes..48 MB) that fits what was
seen, an opcode of the wire protocol (OP_REPLY 1, OP_UPDATE 2001, OP_INSERT 2002, OP_QUERY 2004,
OP_GET_MORE 2005, OP_DELETE 2006, OP_KILL_CURSORS 2007, OP_COMPRESSED 2012, OP_MSG 2013), and
for OP_QUERY a NUL-terminated "db.collection" name, for OP_MSG a section kind of 0 or 1 followed
by a BSON document length.

Meta: ``mongodb_op`` ("query", "msg", "reply"...), ``mongodb_collection`` for OP_QUERY.
"""

from __future__ import annotations

import re
import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

OPS = {
    1: "reply",
    2001: "update",
    2002: "insert",
    2004: "query",
    2005: "get-more",
    2006: "delete",
    2007: "kill-cursors",
    2012: "compressed",
    2013: "msg",
}
MAX_MESSAGE = 48 * 1024 * 1024
_COLLECTION = re.compile(rb"[\x21-\x7e]{1,120}\.[\x21-\x7e]{1,120}")


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 21:
        return NO_MATCH
    length, _, _, op = struct.unpack_from("<iiii", data, 0)
    if not 21 <= length <= MAX_MESSAGE or op not in OPS or (op == 1) == from_client:
        return NO_MATCH
    meta: dict = {"mongodb_op": OPS[op]}
    if op == 2004:
        end = data.find(b"\x00", 20, 20 + 256)
        if end < 0 or not _COLLECTION.fullmatch(data[20:end]):
            return NO_MATCH
        meta["mongodb_collection"] = clean_text(data[20:end], 128)
    elif op == 2013:
        if len(data) < 25 or data[20] not in (0, 1):
            return NO_MATCH
        (doc,) = struct.unpack_from("<i", data, 21)
        if not 5 <= doc <= length:
            return NO_MATCH
    elif op == 1:
        if len(data) < 36:
            return NO_MATCH
        (returned,) = struct.unpack_from("<i", data, 32)
        if not 0 <= returned <= 1 << 20:
            return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, meta)
