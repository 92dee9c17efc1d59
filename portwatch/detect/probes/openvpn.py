"""OpenVPN control channel: the hard-reset packets that open every session.

`probe(data, from_client)`: one UDP datagram, or on TCP the stream with a 2-byte packet length.
Client: P_CONTROL_HARD_RESET_CLIENT_V2 or V3 (opcode 7 or 10, key id 0) with a session id, then
either no packet authentication (an empty ACK array and message packet-id 0: 14 bytes) or a
tls-auth/tls-crypt HMAC of 16-64 bytes, a packet-id of 1 and a timestamp. Server: the matching
P_CONTROL_HARD_RESET_SERVER_V2 (opcode 8) acknowledging packet 0.

Meta: ``openvpn_opcode`` ("hard-reset-client-v2"...), ``openvpn_tls_auth`` (bool).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

CLIENT = {7: "hard-reset-client-v2", 10: "hard-reset-client-v3"}
SERVER = {8: "hard-reset-server-v2"}
HMAC_SIZES = (16, 20, 32, 48, 64)


def _packet(data: bytes, from_client: bool) -> dict | None:
    if len(data) < 14 or data[0] & 7:
        return None
    opcode = data[0] >> 3
    table = CLIENT if from_client else SERVER
    if opcode not in table:
        return None
    meta = {"openvpn_opcode": table[opcode]}
    acks = 0 if from_client else 1
    plain = 1 + 8 + 1 + acks * 4 + (8 if acks else 0) + 4
    if len(data) == plain and data[9] == acks and data[-4:] == b"\x00\x00\x00\x00":
        return {**meta, "openvpn_tls_auth": False}
    for h in HMAC_SIZES:
        if len(data) >= plain + h + 8 and struct.unpack_from("!I", data, 9 + h)[0] == 1 and data[17 + h] == acks:
            return {**meta, "openvpn_tls_auth": True}
    if opcode == 10 and len(data) >= 14 + 32:  # tls-crypt-v2 carries a wrapped client key: bounded size
        return {**meta, "openvpn_tls_auth": True}
    return None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    meta = _packet(data, from_client)
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)


def probe_tcp(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 16:
        return NO_MATCH
    (length,) = struct.unpack_from("!H", data, 0)
    if length < 14 or length + 2 > len(data) + 4096:
        return NO_MATCH
    return probe(data[2 : 2 + length], from_client)
