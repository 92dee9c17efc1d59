"""Apache Kafka wire protocol: size-prefixed requests with an API key, version and client id.

`probe(data, from_client)`: client side only (responses carry no type, just the correlation id).
A 4-byte size that fits the first message (or is cut by the detection depth), an API key of the
published range (0-75), a version of at most 20, and a client id that is null (-1) or a short
printable string present in full.

Meta: ``kafka_api`` (e.g. "produce", "fetch", "metadata", or "api-N"), ``kafka_client_id``.
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

APIS = {
    0: "produce",
    1: "fetch",
    2: "list-offsets",
    3: "metadata",
    8: "offset-commit",
    9: "offset-fetch",
    10: "find-coordinator",
    11: "join-group",
    12: "heartbeat",
    13: "leave-group",
    14: "sync-group",
    17: "sasl-handshake",
    18: "api-versions",
    19: "create-topics",
    36: "sasl-authenticate",
}
MAX_API = 75
MAX_SIZE = 100 * 1024 * 1024


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if not from_client or len(data) < 14:
        return NO_MATCH
    size, api, version, _, id_len = struct.unpack_from("!iHHih", data, 0)
    if not 10 <= size <= MAX_SIZE or api > MAX_API or version > 20:
        return NO_MATCH
    meta = {"kafka_api": APIS.get(api, f"api-{api}")}
    if id_len == -1:
        return ProbeResult(ProbeStatus.MATCH, meta)
    if not 1 <= id_len <= 256 or 14 + id_len > len(data) or 10 + id_len > size:
        return NO_MATCH
    client_id = data[14 : 14 + id_len]
    if any(b < 0x20 or b > 0x7E for b in client_id):
        return NO_MATCH
    meta["kafka_client_id"] = clean_text(client_id, 64)
    return ProbeResult(ProbeStatus.MATCH, meta)
