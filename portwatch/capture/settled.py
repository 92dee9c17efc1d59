"""Settled flows: classified, no longer inspected, not closed. Their packets only count.

A settled flow's packets change nothing but its counters (packets, payload bytes, last time per
direction), so a whole chunk of them can be counted with numpy instead of a Python step each
(`portwatch.batch`). This table gives each settled flow a slot, finds the slots of a chunk's
flow keys in a few array operations, and holds the counts not yet added to the flow's `Side`s.

Keys (as 64-bit words, `capture.fast_path.key_words`) are found through an open-addressing hash
table of numpy arrays, and every hit is confirmed against the whole stored key: the hash only has
to be fast, and a collision (crafted or not) costs a miss, after which the packet takes the
ordinary per-packet path. A released slot's entries stay in the table, marked not live, until the
table is rebuilt; only then is the slot reused.
"""

from __future__ import annotations

import os

import numpy as np

from .fast_path import V6_WORDS, keys_as_words
from .flows import Flow, Side

_MULT = np.uint64(0x9E3779B97F4A7C15)
# Per process: keys that collide on purpose cannot be worked out from the code alone.
_SEED = np.uint64(int.from_bytes(os.urandom(8), "little"))
_SHIFT = np.uint64(29)
_TOP = np.uint64(1 << 63)
# A look-up gives up after this many entries (a miss: the loop takes the packet). The table is at
# most a quarter full, so nearly every search ends within a few; each further round is a pass of
# numpy calls over the keys still searching.
MAX_PROBES = 8
FLUSH_STEP = 4096  # pending counts handed to the sides per step (Python objects made at once)
ADMIT_AT = 64  # flows waiting for a slot before they get one (each admission is a few numpy calls)


def key_hashes(words: np.ndarray, proto: np.ndarray, nwords: np.ndarray) -> np.ndarray:
    """Non-zero 64-bit hashes of flow keys (rows of words), with their transport and key length."""
    h = (proto.astype(np.uint64) + (nwords.astype(np.uint64) << np.uint64(8))) ^ _SEED
    for col in range(words.shape[1]):
        h = (h ^ words[:, col]) * _MULT
        h ^= h >> _SHIFT
    return h | _TOP  # never 0 (an empty entry); the low bits, which place it, stay as mixed


class SettledFlows:
    def __init__(self, capacity: int = 1024) -> None:
        self.sides: list[tuple[Side, Side] | None] = []  # per slot
        self.free: list[int] = []  # released slots the table no longer holds
        self.dead: list[int] = []  # released slots still in the table
        self.waiting: list[Flow] = []  # settled since the last chunk: slotted at the next
        self.pending = False  # some counts wait in the arrays
        self.capacity = 0
        # Per slot.
        self.live = np.zeros(0, dtype=bool)
        self.last = np.zeros(0)  # the flow's last packet time
        self.proto = np.zeros(0, dtype=np.uint8)
        # Per slot * 2 + direction ("val"): the directional key and the counts not yet on the Side.
        self.words = np.zeros((0, V6_WORDS), dtype=np.uint64)
        self.nwords = np.zeros(0, dtype=np.uint8)
        self.pkts = np.zeros(0, dtype=np.int64)
        self.bytes = np.zeros(0, dtype=np.int64)
        self.ts = np.zeros(0)
        self._grow(capacity)
        self._rebuild()

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        self.capacity = capacity
        self.sides.extend([None] * (capacity - old))
        self.free.extend(range(capacity - 1, old - 1, -1))

        def more(arr: np.ndarray, rows: int, fill: float) -> np.ndarray:
            out = np.full((rows, *arr.shape[1:]), fill, dtype=arr.dtype)
            out[: len(arr)] = arr
            return out

        self.live = more(self.live, capacity, False)
        self.last = more(self.last, capacity, 0.0)
        self.proto = more(self.proto, capacity, 0)
        self.words = more(self.words, 2 * capacity, 0)
        self.nwords = more(self.nwords, 2 * capacity, 0)
        self.pkts = more(self.pkts, 2 * capacity, 0)
        self.bytes = more(self.bytes, 2 * capacity, 0)
        self.ts = more(self.ts, 2 * capacity, -np.inf)

    def __len__(self) -> int:
        return int(self.live.sum())

    # ---- the hash table ------------------------------------------------------------------
    def _rebuild(self) -> None:
        """A table of the live slots' keys, at most a quarter full; released slots become free."""
        size = 1 << max(12, (8 * self.capacity - 1).bit_length())
        self.tab_h = np.zeros(size, dtype=np.uint64)  # 0: empty
        self.tab_v = np.full(size, -1, dtype=np.int32)
        self.mask = np.uint64(size - 1)
        self.entries = 0
        self.free.extend(self.dead)
        self.dead.clear()
        vals = np.flatnonzero(np.repeat(self.live, 2))
        self._insert(vals)

    def _insert(self, vals: np.ndarray) -> None:
        group = vals
        h = key_hashes(self.words[group], self.proto[group >> 1], self.nwords[group])
        pos = h & self.mask
        while len(group):
            empty = self.tab_h[pos] == 0
            # Among keys aiming at the same empty entry, the first takes it; the rest probe on.
            cand = np.flatnonzero(empty)
            _, first = np.unique(pos[cand], return_index=True)
            won = cand[first]
            self.tab_h[pos[won]] = h[won]
            self.tab_v[pos[won]] = group[won]
            lost = np.ones(len(group), dtype=bool)
            lost[won] = False
            group, h, pos = group[lost], h[lost], (pos[lost] + np.uint64(1)) & self.mask
        self.entries += len(vals)

    def lookup(self, words: np.ndarray, proto: np.ndarray, nwords: np.ndarray) -> np.ndarray:
        """slot * 2 + direction of each key's live settled flow, or -1 (`capture.fast_path.key_words`)."""
        n = len(words)
        out = np.full(n, -1, dtype=np.int64)
        if not n:
            return out
        h = key_hashes(words, proto, nwords)
        pos = h & self.mask
        todo = np.arange(n)
        for _ in range(MAX_PROBES):
            th = self.tab_h[pos]
            hit = np.flatnonzero(th == h)
            if len(hit):
                # A hash is only a hint: the entry is this key's if the whole key matches, and live.
                v = self.tab_v[pos[hit]]
                asked = todo[hit]
                same = (self.nwords[v] == nwords[asked]) & (self.proto[v >> 1] == proto[asked]) & self.live[v >> 1]
                stored, given = self.words[v], words[asked]
                for col in range(stored.shape[1]):
                    same &= stored[:, col] == given[:, col]
                out[todo[hit[same]]] = v[same]
            on = (th != 0) & (out[todo] < 0)  # an entry of another key: probe the next one
            if not on.any():
                break
            todo, h, pos = todo[on], h[on], (pos[on] + np.uint64(1)) & self.mask
        return out

    # ---- slots ---------------------------------------------------------------------------
    def admit_waiting(self, at_least: int = 1) -> None:
        """Give the flows that settled since the last chunk their slots (if still settled), once
        `at_least` of them wait."""
        if len(self.waiting) < at_least:
            return
        waiting, self.waiting = self.waiting, []
        slots: list[int] = []
        lasts: list[float] = []
        protos: list[int] = []
        keys_a: list[bytes] = []
        keys_b: list[bytes] = []
        for flow in waiting:
            a, b = flow.sides
            if a.flow is None or flow.slot is not None or flow.closed_at is not None or a.inspecting:
                continue  # gone, slotted already, or no longer settled
            if not self.free:
                if len(self.dead) * 4 >= self.capacity:
                    self._rebuild()  # frees the released slots
                else:
                    self._grow(self.capacity + self.capacity // 2)
            slot = self.free.pop()
            flow.slot = slot
            self.sides[slot] = (a, b)
            slots.append(slot)
            lasts.append(a.ts if a.ts >= b.ts else b.ts)
            protos.append(flow.proto)
            keys_a.append(flow.key_a)
            keys_b.append(flow.key_b)
        if not slots:
            return
        # The arrays are written once for the whole batch (numpy per element costs microseconds).
        s = np.asarray(slots, dtype=np.int64)
        vals = np.concatenate((2 * s, 2 * s + 1))
        self.live[s] = True
        self.last[s] = lasts
        self.proto[s] = protos
        # Zero-padded rows: a reused slot may have held a longer key.
        self.words[vals], self.nwords[vals] = keys_as_words(keys_a + keys_b)
        if self.entries + 2 * len(slots) > len(self.tab_h) // 4:
            self._rebuild()  # takes the new slots too: they are live
        else:
            self._insert(vals)

    def release(self, flow: Flow) -> None:
        """The flow is no longer settled (closing, removed): hand its counts over, free the slot."""
        slot = flow.slot
        assert slot is not None
        flow.slot = None
        self.flush_slot(slot)
        self.live[slot] = False
        self.sides[slot] = None
        self.dead.append(slot)

    # ---- counts --------------------------------------------------------------------------
    def count(self, vals: np.ndarray, ts: np.ndarray, payload: np.ndarray) -> None:
        """Add packets (in capture order, times not decreasing) to their flows' pending counts."""
        np.add.at(self.pkts, vals, 1)
        np.add.at(self.bytes, vals, payload)
        np.maximum.at(self.ts, vals, ts)
        np.maximum.at(self.last, vals >> 1, ts)
        self.pending = True

    def flush_slot(self, slot: int) -> None:
        sides = self.sides[slot]
        if sides is None:
            return
        for d in (0, 1):
            v = 2 * slot + d
            n = int(self.pkts[v])
            if n:
                side = sides[d]
                side.pkts += n
                side.bytes += int(self.bytes[v])
                t = float(self.ts[v])
                if t > side.ts:
                    side.ts = t
                self.pkts[v] = self.bytes[v] = 0
                self.ts[v] = -np.inf

    def flush(self) -> None:
        """Hand every pending count to its flow's sides."""
        if not self.pending:
            return
        sides = self.sides
        pending = np.flatnonzero(self.pkts)
        for start in range(0, len(pending), FLUSH_STEP):  # in steps: a few Python objects at a time
            vals = pending[start : start + FLUSH_STEP]
            for v, n, nbytes, t in zip(vals.tolist(), self.pkts[vals].tolist(), self.bytes[vals].tolist(),
                                       self.ts[vals].tolist(), strict=True):
                side = sides[v >> 1][v & 1]  # type: ignore[index]
                side.pkts += n
                side.bytes += nbytes
                if t > side.ts:
                    side.ts = t
        self.pkts[pending] = 0
        self.bytes[pending] = 0
        self.ts[pending] = -np.inf
        self.pending = False
