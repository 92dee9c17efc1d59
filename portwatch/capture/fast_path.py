"""The pipeline's Ethernet fast paths, for a whole chunk of records at once (numpy).

`Analyzer.run` reads Ethernet + IPv4 (no options, not a fragment) or IPv6 (no extension
header) + TCP/UDP frames by byte indexing. This module applies the same conditions to every
record of a chunk in a few array operations, so that the packets of classified flows can be
counted without a Python step per packet (`portwatch.batch`). It must agree with the per-packet
loop record by record (tests/capture/test_fast_path.py checks both against the general decoder).
Pure: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ETHERNET = 1
TCP, UDP = 6, 17
HEAD = 68  # frame bytes the fast path reads: up to the TCP flags over IPv6
V4_KEY_AT, V6_KEY_AT = 26, 22  # addresses then ports, as they sit in the packet
V4_WORDS, V6_WORDS = 2, 5  # a key as little-endian 64-bit words (12 and 36 bytes, zero-padded)
_LOW32 = np.uint64(0xFFFFFFFF)


@dataclass(slots=True)
class ChunkFacts:
    """Per record: whether the fast path takes it, and what it reads there."""

    v4: np.ndarray  # bool: Ethernet + IPv4 + TCP/UDP, well formed, on the fast path
    v6: np.ndarray  # bool: the same over IPv6
    proto: np.ndarray  # int32: 6 or 17 where v4 | v6
    flags: np.ndarray  # int32: TCP flags (0 for UDP)
    payload: np.ndarray  # int32: transport payload bytes, as the loop counts them


def fast_path_facts(head: np.ndarray, caplen: np.ndarray, linktype: int) -> ChunkFacts:
    """`head`: the first HEAD bytes of each frame (uint8 rows; bytes past a short frame are
    whatever follows it and are never used); `caplen`: the frames' captured lengths."""
    n = len(caplen)
    if linktype != ETHERNET or not n:
        no = np.zeros(n, dtype=bool)
        zero = np.zeros(n, dtype=np.int32)
        return ChunkFacts(no, no, zero, zero, zero)

    def b(col: int) -> np.ndarray:
        return head[:, col].astype(np.int32)

    e12, e13, e14 = b(12), b(13), b(14)
    is4 = (caplen >= 54) & (e12 == 8) & (e13 == 0) & (e14 == 0x45) & ((b(20) & 0x3F) == 0) & (b(21) == 0)
    is6 = (caplen >= 62) & ~is4 & (e12 == 0x86) & (e13 == 0xDD) & ((e14 >> 4) == 6)

    def tb(k: int) -> np.ndarray:
        """Byte k of the transport header: at 34 + k over IPv4, 54 + k over IPv6."""
        return np.where(is4, head[:, 34 + k], head[:, 54 + k]).astype(np.int32)

    proto = np.where(is4, b(23), np.where(is6, b(20), 0))
    t = np.where(is4, 34, 54)  # transport header, from the frame's start
    pend4 = np.minimum(14 + ((b(16) << 8) | b(17)), caplen)
    pend6 = 54 + ((b(18) << 8) | b(19))
    pend6 = np.where((pend6 == 54) | (pend6 > caplen), caplen, pend6)  # a jumbogram or a cut frame
    pend = np.where(is4, pend4, pend6)
    ip = is4 | is6

    tcp = ip & (proto == TCP) & (t + 20 <= caplen)
    poff_tcp = t + ((tb(12) >> 4) << 2)
    tcp_ok = tcp & (poff_tcp <= pend) & (poff_tcp >= t + 20)

    dport_hi = tb(2)
    udp = ip & (proto == UDP) & (dport_hi != 0x12) & (dport_hi != 0x08)  # not VXLAN, GTP-U: decoded inside
    ulen = (tb(4) << 8) | tb(5)
    udp_ok = udp & (ulen >= 8) & (pend >= t + 8)
    pend_udp = np.minimum(pend, t + ulen)

    ok = tcp_ok | udp_ok
    payload = np.where(tcp_ok, pend - poff_tcp, np.where(udp_ok, pend_udp - (t + 8), 0))
    flags = np.where(tcp_ok, tb(13), 0)
    return ChunkFacts(ok & is4, ok & is6, np.where(ok, proto, 0), flags, payload)


def key_words(head: np.ndarray, v6: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flow keys of frames (rows of `head`; `v6` says which are IPv6) as V6_WORDS 64-bit words
    (an IPv4 key's 12 bytes in the first two, the rest zero), and each key's own word count."""
    out = np.ascontiguousarray(head[:, V6_KEY_AT : V6_KEY_AT + 8 * V6_WORDS]).view("<u8").copy()
    out[:, -1] &= _LOW32
    four = ~v6
    if four.any():
        w4 = np.ascontiguousarray(head[four, V4_KEY_AT : V4_KEY_AT + 8 * V4_WORDS]).view("<u8")
        out[four] = 0
        out[four, :V4_WORDS] = w4
        out[four, V4_WORDS - 1] &= _LOW32
    return out, np.where(v6, V6_WORDS, V4_WORDS).astype(np.uint8)


def keys_as_words(keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Flow keys (bytes) as `key_words` gives them for frames: rows of V6_WORDS words, zero-padded,
    and each key's own word count."""
    width = 8 * V6_WORDS
    joined = b"".join([key + bytes(width - len(key)) for key in keys])
    words = np.frombuffer(joined, dtype="<u8").reshape(len(keys), V6_WORDS)
    return words, np.array([V6_WORDS if len(key) > 8 * V4_WORDS else V4_WORDS for key in keys], dtype=np.uint8)


def shard_numbers(head: np.ndarray, v6: np.ndarray, shards: int) -> np.ndarray:
    """`flows.shard_of` of each frame's flow key (rows of `head`; `v6` says which are IPv6)."""
    # IPv4: addresses and ports as three big-endian 32-bit words, from one copy of 12 bytes a row.
    w4 = np.ascontiguousarray(head[:, V4_KEY_AT : V4_KEY_AT + 12]).view(">u4").astype(np.uint64)
    mixed = w4[:, 0] ^ w4[:, 1] ^ (w4[:, 2] >> np.uint64(16)) ^ (w4[:, 2] & np.uint64(0xFFFF))
    if v6.any():
        # 128-bit addresses folded as shard_of folds them: high half onto low, then 32 onto 32.
        rows = head[v6]
        a = np.ascontiguousarray(rows[:, V6_KEY_AT : V6_KEY_AT + 32]).view(">u8")
        p = np.ascontiguousarray(rows[:, V6_KEY_AT + 32 : V6_KEY_AT + 36]).view(">u2").astype(np.uint64)
        mixed[v6] = a[:, 0] ^ a[:, 1] ^ a[:, 2] ^ a[:, 3] ^ p[:, 0] ^ p[:, 1]
    mixed ^= mixed >> np.uint64(32)
    return ((mixed & _LOW32) * np.uint64(0x9E3779B1) >> np.uint64(16)) % np.uint64(shards)
