"""MQTT 3.1/3.1.1/5 control packets, for streams seen after their CONNECT (mid-connection).

`probe(data, from_client)`: TCP stream prefix. Each control packet has a type 1-15, the fixed
flags the type requires (PUBLISH: any but QoS 3; PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0010; others:
0000), a variable-length remaining length of at most 4 bytes, and a body of a size the type
allows (PINGREQ/PINGRESP 0; PUBACK..PUBCOMP at least 2; PUBLISH a topic whose length fits).
At least two whole packets must chain, so one lucky byte pair is not enough.

Meta: ``mqtt_first`` (name of the first packet type, e.g. "publish", "pingreq").
"""

from __future__ import annotations

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

NAMES = (
    None,
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "pingreq",
    "pingresp",
    "disconnect",
    "auth",
)
MAX_PACKETS = 16


def _remaining(data: bytes, off: int) -> tuple[int, int] | None:
    value, shift = 0, 0
    for i in range(4):
        if off + i >= len(data):
            return None
        byte = data[off + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, off + i + 1
        shift += 7
    return None


def _packet_ok(kind: int, flags: int, body: bytes) -> bool:
    if kind == 3:
        return (flags >> 1) & 3 != 3 and len(body) >= 2 and 2 + (body[0] << 8 | body[1]) <= len(body)
    if flags != (2 if kind in (6, 8, 10) else 0):
        return False
    if kind in (12, 13):
        return not body
    if kind in (2, 4, 5, 6, 7, 9, 11):
        return len(body) >= 2
    return True


def probe(data: bytes, from_client: bool) -> ProbeResult:
    off, whole, first = 0, 0, None
    for _ in range(MAX_PACKETS):
        if off >= len(data):
            break
        kind, flags = data[off] >> 4, data[off] & 0x0F
        if kind == 0:
            return NO_MATCH
        rem = _remaining(data, off + 1)
        if rem is None:
            break
        end = rem[1] + rem[0]
        if end > len(data):
            break
        if not _packet_ok(kind, flags, data[rem[1] : end]):
            return NO_MATCH
        first = first or NAMES[kind]
        whole += 1
        off = end
    if whole < 2:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"mqtt_first": first})
