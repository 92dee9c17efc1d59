"""IPsec key exchange: ISAKMP/IKEv1 (RFC 2408) and IKEv2 (RFC 7296), on UDP 500 or NAT-T 4500.

`probe(data, from_client)`: one datagram. On NAT-T the IKE message follows a 4-byte zero
non-ESP marker (RFC 3948); a one-byte 0xFF NAT keepalive also matches. The 28-byte header must
have a non-zero initiator SPI, a major version 1 or 2 with the exchange types of that version,
and a length equal to the message. `probe_esp_units` (``units = True``): ESP in UDP on 4500,
recognised by one SPI with a sequence number that grows across datagrams.

Meta: ``ike_version`` (1, 2), ``ike_exchange`` ("main", "aggressive", "ike_sa_init"...).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

V1_EXCHANGES = {1: "base", 2: "identity-protection", 4: "aggressive", 5: "informational", 32: "quick", 33: "new-group"}
V2_EXCHANGES = {34: "ike_sa_init", 35: "ike_auth", 36: "create_child_sa", 37: "informational"}


def parse_ike(data: bytes) -> dict | None:
    if len(data) < 28:
        return None
    ispi, nxt, version, exchange, flags, _, length = struct.unpack_from("!8s8xBBBBII", data, 0)
    major = version >> 4
    if ispi == b"\x00" * 8 or length != len(data) or length < 28:
        return None
    if major == 1 and exchange in V1_EXCHANGES and nxt <= 20 and not flags & 0xF8:
        return {"ike_version": 1, "ike_exchange": V1_EXCHANGES[exchange]}
    if major == 2 and exchange in V2_EXCHANGES and (nxt == 0 or 33 <= nxt <= 53) and not flags & 0xC7:
        return {"ike_version": 2, "ike_exchange": V2_EXCHANGES[exchange]}
    return None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if data == b"\xff":
        return ProbeResult(ProbeStatus.MATCH, {"ike_keepalive": True})
    meta = parse_ike(data[4:] if data[:4] == b"\x00\x00\x00\x00" else data)
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)


def probe_esp_units(units: Sequence[bytes], from_client: bool) -> ProbeResult:
    heads = [struct.unpack_from("!II", u, 0) for u in units[:8] if len(u) >= 24 and u[:4] != b"\x00\x00\x00\x00"]
    for (spi_a, seq_a), (spi_b, seq_b) in itertools.pairwise(heads):
        if spi_a == spi_b and 0 < seq_b - seq_a <= 64:
            return ProbeResult(ProbeStatus.MATCH, {"esp_spi": f"{spi_a:08x}"})
    return NO_MATCH


probe_esp_units.units = True  # type: ignore[attr-defined]
