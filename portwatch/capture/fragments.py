"""Bounded IPv4/IPv6 fragment reassembly.

Only the datagrams that are actually fragmented come here, so this is off the hot path. Bounds:
a datagram is at most 65,535 bytes of payload (the IP limit), at most `max_datagrams` are pending
at once (the oldest is dropped when a new one would exceed it), and a datagram not completed
within `timeout` seconds of capture time is dropped. Overlapping fragments keep the first copy,
the same first-wins rule TCP reassembly applies (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DATAGRAM = 65535


@dataclass(slots=True)
class _Pending:
    first_ts: float
    total: int = -1  # known once the last fragment (MF clear) arrives
    size: int = 0
    pieces: dict[int, bytes] = field(default_factory=dict)


class Defragmenter:
    def __init__(self, max_datagrams: int = 1024, timeout: float = 30.0) -> None:
        self.max_datagrams = max_datagrams
        self.timeout = timeout
        self.pending: dict[tuple, _Pending] = {}
        self.dropped = 0
        self.overlaps = 0

    def add(self, key: tuple, offset: int, more: int, data: bytes, ts: float) -> bytes | None:
        """Add one fragment's payload; return the whole transport payload once complete."""
        entry = self.pending.get(key)
        if entry is None:
            if len(self.pending) >= self.max_datagrams:
                self._expire(ts)
                if len(self.pending) >= self.max_datagrams:
                    del self.pending[next(iter(self.pending))]
                    self.dropped += 1
            entry = self.pending[key] = _Pending(ts)
        end = offset + len(data)
        if end > MAX_DATAGRAM or (entry.total >= 0 and end > entry.total):
            self._drop(key)
            return None
        if not more:
            if entry.total >= 0 and entry.total != end:
                self._drop(key)
                return None
            entry.total = end
        if offset in entry.pieces:
            self.overlaps += 1
            return None
        entry.pieces[offset] = bytes(data)
        entry.size += len(data)
        if entry.total < 0 or entry.size < entry.total:
            return None
        return self._assemble(key, entry)

    def _assemble(self, key: tuple, entry: _Pending) -> bytes | None:
        out = bytearray(entry.total)
        filled = 0
        for off in sorted(entry.pieces):
            piece = entry.pieces[off]
            if off < filled:  # overlap: the bytes already placed stay (first copy wins)
                self.overlaps += 1
                piece = piece[filled - off :]
                off = filled
            if off > filled:
                return None  # a hole remains; overlapping pieces inflated the byte count
            out[off : off + len(piece)] = piece
            filled = off + len(piece)
        if filled < entry.total:
            return None
        del self.pending[key]
        return bytes(out)

    def _drop(self, key: tuple) -> None:
        self.pending.pop(key, None)
        self.dropped += 1

    def _expire(self, now: float) -> None:
        stale = [k for k, e in self.pending.items() if now - e.first_ts > self.timeout]
        for k in stale:
            self._drop(k)
