"""RTP probe (RFC 3550): recognised by consistency across datagrams, not by one header.

A single RTP header is only "version 2 and a payload type"; a random datagram passes that one time
in a few dozen. Two datagrams of one direction with the same SSRC, the same payload type and a
sequence number that moved forward by 1..64 is the real signature of a media stream.

`probe_units(datagrams, from_client)` (``units = True``): MATCH when at least two of the first
datagrams agree so, or when an RTP packet and an RTCP report multiplexed on the same port (RFC
5761) carry the same SSRC. Meta: ``rtp_payload_type`` and ``rtp_ssrc`` (hex).
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


def rtcp_ssrc(data: bytes) -> int | None:
    """Sender SSRC of an RTCP packet (SR, RR, SDES, BYE, APP) whose length field fits, else None."""
    if len(data) < 8 or data[0] >> 6 != 2 or not 200 <= data[1] <= 204:
        return None
    (words,) = struct.unpack_from("!H", data, 2)
    if (words + 1) * 4 > len(data):
        return None
    return struct.unpack_from("!I", data, 4)[0]


MAX_COMPOUND = 16
NAMES = {200: "sr", 201: "rr", 202: "sdes", 203: "bye", 204: "app"}


SRTCP_TAGS = (10, 4, 16)  # HMAC-SHA1-80, -32, and 128-bit AEAD tags (RFC 3711, 7714)


def _srtcp(data: bytes) -> bool:
    """SRTCP (RFC 3711 3.4): the first report's header and SSRC in clear, the rest encrypted, then the
    E flag + 31-bit index and the authentication tag at the end."""
    if len(data) < 8 or data[0] >> 6 != 2 or data[1] not in (200, 201):
        return False
    first = (struct.unpack_from("!H", data, 2)[0] + 1) * 4
    return any(len(data) - tag - 4 >= first and data[len(data) - tag - 4] & 0x80 for tag in SRTCP_TAGS)


def probe_rtcp(data: bytes, from_client: bool) -> ProbeResult:
    """A compound RTCP datagram (RFC 3550 6.1): version-2 packets of types 200-206 that tile it exactly,
    the first a sender or receiver report when there are several; or an SRTCP datagram."""
    off, count, first = 0, 0, None
    while off < len(data) and count < MAX_COMPOUND:
        if off + 4 > len(data) or data[off] >> 6 != 2 or not 200 <= data[off + 1] <= 206:
            break
        first = first or data[off + 1]
        off += (struct.unpack_from("!H", data, off + 2)[0] + 1) * 4
        count += 1
    if off == len(data) and count and (count == 1 or first in (200, 201)):
        return ProbeResult(ProbeStatus.MATCH, {"rtcp_first": NAMES.get(first or 0, str(first))})
    if _srtcp(data):
        return ProbeResult(ProbeStatus.MATCH, {"rtcp_first": NAMES.get(data[1], str(data[1])), "srtcp": True})
    return NO_MATCH


def probe_units(units: Sequence[bytes], from_client: bool) -> ProbeResult:
    # Other datagrams (STUN keepalives of ICE) may sit between media packets: compare RTP ones only.
    heads = [h for h in (header(u) for u in units[:8]) if h is not None]
    for a, b in itertools.pairwise(heads):
        if a[0] == b[0] and a[3] == b[3] and 0 < (b[1] - a[1]) & 0xFFFF <= MAX_STEP:
            return ProbeResult(ProbeStatus.MATCH, {"rtp_payload_type": a[0], "rtp_ssrc": f"{a[3]:08x}"})
    reports = {rtcp_ssrc(u) for u in units[:8]} - {None}
    for h in heads:
        if h[3] in reports:
            return ProbeResult(ProbeStatus.MATCH, {"rtp_payload_type": h[0], "rtp_ssrc": f"{h[3]:08x}"})
    return NO_MATCH


probe_units.units = True  # type: ignore[attr-defined]
