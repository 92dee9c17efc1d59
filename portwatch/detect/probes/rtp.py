"""RTP probe (RFC 3550): recognised by consistency across datagrams, not by one header.

A single RTP header is only "version 2 and a payload type"; a random datagram passes that one time
in a few dozen. Two datagrams of one direction with the same SSRC, the same payload type and a
sequence number that moved forward by 1..64 is the real signature of a media stream.

`probe_units(datagrams, from_client)` (``units = True``): MATCH when at least two of the first
datagrams agree so. Meta: ``rtp_payload_type`` and ``rtp_ssrc`` (hex).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

MAX_STEP = 64


def header(data: bytes) -> tuple[int, int, int, int] | None:
    """(payload type, sequence, timestamp, ssrc) of an RTP v2 datagram, or None."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    pt = data[1] & 0x7F
    if 72 <= pt <= 76:  # RTCP packet types 200-204 seen through the marker bit
        return None
    cc = data[0] & 0x0F
    if 12 + 4 * cc > len(data):
        return None
    seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
    return pt, seq, ts, ssrc


def probe_units(units: Sequence[bytes], from_client: bool) -> ProbeResult:
    # Other datagrams (STUN keepalives of ICE) may sit between media packets: compare RTP ones only.
    heads = [h for h in (header(u) for u in units[:8]) if h is not None]
    for a, b in itertools.pairwise(heads):
        if a[0] == b[0] and a[3] == b[3] and 0 < (b[1] - a[1]) & 0xFFFF <= MAX_STEP:
            return ProbeResult(ProbeStatus.MATCH, {"rtp_payload_type": a[0], "rtp_ssrc": f"{a[3]:08x}"})
    return NO_MATCH


probe_units.units = True  # type: ignore[attr-defined]
