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
        before = len(self.data)
        for piece_rel, piece in self._new_pieces(rel, payload):
            if piece_rel == len(self.data):
                self.data += piece  # in order: taken whatever the pending bounds say
                self._drain()
            else:
                self._hold(piece_rel, piece)
        return len(self.data) > before

    def _new_pieces(self, rel: int, payload: bytes) -> list[tuple[int, bytes]]:
        """The parts of a segment that no earlier segment covered; disagreements count as anomalies.

        Held segments are kept disjoint, each byte as it first arrived, so a later segment that
        spans both held bytes and a gap fills only the gap (first copy wins there too, not only
        on the contiguous prefix).
        """
        have = len(self.data)
        end = rel + len(payload)
        conflict = False
        # RFC 1122 4.2.3.6: a keep-alive probe resends one garbage octet just below the next
        # sequence number; it disagrees with the stream by design and is no evasion sign.
        if rel < have and not (len(payload) == 1 and end == have):
            n = min(have, end) - rel
            conflict = self.data[rel : rel + n] != payload[:n]
        pieces = []
        pos = max(rel, have)
        for p_rel in sorted(self.pending):
            held = self.pending[p_rel]
            p_end = p_rel + len(held)
            if p_end <= pos or p_rel >= end:
                continue
            if p_rel > pos:
                pieces.append((pos, payload[pos - rel : p_rel - rel]))
            lo, hi = max(p_rel, pos), min(p_end, end)
            if held[lo - p_rel : hi - p_rel] != payload[lo - rel : hi - rel]:
                conflict = True
            pos = hi
        if pos < end:
            pieces.append((pos, payload[pos - rel :]))
        if conflict:
            self.anomalies += 1
        return pieces

    def _hold(self, rel: int, payload: bytes) -> None:
        if len(self.pending) >= MAX_PENDING_SEGMENTS or self.pending_bytes + len(payload) > self.depth:
            self.gaps += 1
            return
        self.pending[rel] = payload
        self.pending_bytes += len(payload)

    def _drain(self) -> None:
        # Held pieces are disjoint and lie beyond the prefix, so the next one starts exactly at its end.
        while self.pending:
            payload = self.pending.pop(len(self.data), None)
            if payload is None:
                return
            self.pending_bytes -= len(payload)
            self.data += payload
