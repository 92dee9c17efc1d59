"""Bounded, in-order TCP stream reassembly for one direction of a flow.

Only the first `depth` bytes of each direction are kept: detection needs the first bytes, not the
bulk (DESIGN.md). Segments are placed by sequence number relative to the stream start, modulo 2**32
so that wrap-around is invisible. The policy on overlaps is "first copy wins", as in Suricata's
`first` policy and Ptacek & Newsham's recommendation to pick one rule and flag disagreements: a
segment that covers bytes already received and disagrees with them counts as an anomaly and does
not change what the detector sees.
"""

from __future__ import annotations

DEFAULT_DEPTH = 4096
MAX_PENDING_SEGMENTS = 64

_HALF = 1 << 31
_MASK = 0xFFFFFFFF


class StreamBuffer:
    __slots__ = ("anomalies", "base", "data", "depth", "gaps", "pending", "pending_bytes")

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        self.depth = depth
        self.base: int | None = None  # sequence number of stream byte 0
        self.data = bytearray()
        self.pending: dict[int, bytes] = {}  # out-of-order segments by relative offset
        self.pending_bytes = 0
        self.anomalies = 0
        self.gaps = 0  # segments that could not be placed (buffer full, or beyond depth)

    @property
    def full(self) -> bool:
        return len(self.data) >= self.depth

    def syn(self, seq: int) -> None:
        """A SYN fixes the stream start: data begins at ISN + 1 (also for data carried on the SYN)."""
        if self.base is None:
            self.base = (seq + 1) & _MASK

    def add(self, seq: int, payload: bytes) -> bool:
        """Place a segment; return True when the contiguous prefix grew."""
        if not payload:
            return False
        if self.base is None:
            self.base = seq  # mid-stream pickup: the first data seen starts the stream
        rel = (seq - self.base) & _MASK
        if rel >= _HALF:  # before the stream start: keep only the part from offset 0 on
            rel -= 1 << 32
            if rel + len(payload) <= 0:
                return False
            payload = payload[-rel:]
            rel = 0
        if rel >= self.depth:
            return False
        payload = payload[: self.depth - rel]
        have = len(self.data)
        if rel > have:
            self._hold(rel, payload)
            return False
        if not self._accept(rel, payload):
            return False
        self._drain()
        return True

    def _accept(self, rel: int, payload: bytes) -> bool:
        """Append the part of an in-order segment beyond what is held; compare the overlap."""
        have = len(self.data)
        overlap = have - rel
        if overlap > 0:
            if self.data[rel : rel + min(overlap, len(payload))] != payload[:overlap]:
                self.anomalies += 1
            if overlap >= len(payload):
                return False
            payload = payload[overlap:]
        self.data += payload
        return True

    def _hold(self, rel: int, payload: bytes) -> None:
        old = self.pending.get(rel)
        if old is not None:
            n = min(len(old), len(payload))
            if old[:n] != payload[:n]:
                self.anomalies += 1
            if len(payload) <= len(old):
                return
            payload = old + payload[len(old) :]  # first copy wins on the shared part
            self.pending_bytes -= len(old)
        elif len(self.pending) >= MAX_PENDING_SEGMENTS or self.pending_bytes + len(payload) > self.depth:
            self.gaps += 1
            return
        self.pending[rel] = payload
        self.pending_bytes += len(payload)

    def _drain(self) -> None:
        while self.pending:
            have = len(self.data)
            ready = [r for r in self.pending if r <= have]
            if not ready:
                return
            for rel in sorted(ready):
                payload = self.pending.pop(rel)
                self.pending_bytes -= len(payload)
                self._accept(rel, payload)
