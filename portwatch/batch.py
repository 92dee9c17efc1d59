"""Whole-chunk counting of settled flows' packets: what `Analyzer.run` reads from a capture file.

Most packets of a capture belong to flows that are classified and no longer inspected; all such
a packet does in the per-packet loop is add to its direction's counters. Here a chunk of the file
(~2,500 records) is decoded with numpy (`capture.fast_path`), its flow keys are found among the
settled flows at once (`capture.settled`), and those packets are counted there. The others (new
flows, flows still inspected, TCP SYN/FIN/RST, anything off the fast path) go on to `run` as
records, in capture order, exactly as they would without this step.

Why the result is the same as feeding every record to `run`:
- A flow's packets in a chunk are counted here only if none of them needs the loop: no SYN, FIN or
  RST (closing or reopening), none off the fast path (checked by decoding those records), and
  none as late as the shortest idle timeout after the flow's last packet before the chunk (so no
  idle sweep inside the chunk can end it). The chunk's times must not decrease, and the flow table
  must have room for one new flow per record (so no eviction happens inside the chunk).
- One shard of a split capture (`Config.shard_count`) skips the other shards' fast-path packets
  here too, by the same flow hash as the loop's shard test (`flows.shard_of`).
- Timers run on capture time before each packet. For every counted packet at which a timer
  would fire (the next idle sweep, or the oldest closed flow's release), `run` gets a tick: a
  record of no link type that fires the timers and is then taken back out of the counters.
- Counts are handed to the flow's `Side`s before every sweep and whenever the flow leaves the
  settled set (closing, removal): the sweep then sees a last time that may lie later in the
  chunk, which changes no verdict because no gap in the chunk reaches the idle timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .capture.decode import FRAGMENT, MALFORMED, decode
from .capture.fast_path import HEAD, TCP, UDP, fast_path_facts, key_words, shard_numbers
from .capture.flows import flow_key
from .capture.settled import ADMIT_AT, SettledFlows
from .capture.sources import CaptureSource, Record, RecordChunk

if TYPE_CHECKING:
    from .pipeline import Analyzer

TICK = -1  # the link type of a tick: no decoder knows it
MIN_RECORDS = 256  # fewer records than this in a chunk (a straddling record): the loop takes them all
SYN_FIN_RST = 0x07


def batched_records(analyzer: Analyzer, source: CaptureSource, chunk_size: int) -> Iterator[Record]:
    """The records of `source` that `analyzer.run` must see; counts the others in `analyzer.settled`."""
    batcher = _Batcher(analyzer)
    try:
        chunks = source.record_chunks(chunk_size)
        while True:
            # Not a for loop, and the chunk's work in a function of its own: nothing keeps the last
            # chunk alive while the next one is read.
            chunk = next(chunks, None)
            if chunk is None:
                break
            yield from batcher.records(chunk)
            del chunk
    finally:
        # Ticks went through the loop as records of an unknown link type: take them back out.
        analyzer.stats.packets -= batcher.ticks
        analyzer.stats.unsupported_link -= batcher.ticks


class _Batcher:
    def __init__(self, analyzer: Analyzer) -> None:
        assert analyzer.settled is not None
        self.analyzer = analyzer
        self.settled = analyzer.settled
        config = analyzer.config
        self.min_idle = min(t for t in (config.idle_tcp, config.idle_udp, config.idle_dns) if t is not None)
        self.latest = -np.inf  # the latest capture time of the chunks so far
        self.recheck = np.empty(0, dtype=np.int64)  # slots whose packets took the loop in the last chunk
        self.ticks = 0

    def records(self, chunk: RecordChunk) -> Iterator[Record]:
        """Count what this chunk's settled flows (and other shards) carry; yield the rest."""
        analyzer, settled, stats, config = self.analyzer, self.settled, self.analyzer.stats, self.analyzer.config
        n = len(chunk.offsets)
        hdr = np.asarray(chunk.offsets, dtype=np.int64)
        rows, whole = _rows(chunk.buf, hdr)
        sec, frac, caplen = _header_words(rows, chunk.order)
        if chunk.per_sec:  # pcapng: one 64-bit count of ticks, split as the record reader splits it
            sec, frac = _seconds(sec, frac, chunk.per_sec)
        ts = sec.astype(np.float64) + frac.astype(np.float64) * chunk.tick  # as the record reader computes
        frame = hdr + 16
        settled.admit_waiting(ADMIT_AT)
        _refresh_last(settled, self.recheck)
        self.recheck = np.empty(0, dtype=np.int64)
        monotonic = bool(ts[0] >= self.latest) and bool((ts[1:] >= ts[:-1]).all())
        self.latest = max(self.latest, float(ts.max()))
        split = None
        worth = settled.entries or config.shard_count > 1
        if n >= MIN_RECORDS and monotonic and worth and analyzer.table.count + n < config.max_flows:
            split = _split(analyzer, chunk, rows, whole, frame, caplen, ts, self.min_idle)
        if split is None:
            if not monotonic:
                settled.flush()  # a packet's time is its side's last time only if time goes forward
            yield from zip(ts.tolist(), repeat(chunk.linktype, n), repeat(chunk.buf, n), frame.tolist(),
                           caplen.tolist(), strict=True)
            return
        take = split.take
        self.recheck = split.left
        idx = np.flatnonzero(take & ~split.foreign)
        if len(idx):
            settled.count(split.vals[idx], ts[idx], split.payload[idx])
        # Counted here, as the loop would count them: settled flows' packets, other shards'.
        taken = int(take.sum())
        stats.packets += taken
        stats.bytes += int(caplen[take].sum())
        stats.other_shard += taken - len(idx)
        # The rest, in order, with a tick wherever a counted packet would have fired a timer.
        loop = np.flatnonzero(~take)
        stretch = np.diff(loop, prepend=-1) > 1  # counted packets come just before this record
        before = ts[np.maximum(loop - 1, 0)]  # the time of the last of them
        buf, linktype = chunk.buf, chunk.linktype
        lo = 0
        for i, t, at, length, counted_before, t_before in zip(
            loop.tolist(), ts[loop].tolist(), frame[loop].tolist(), caplen[loop].tolist(), stretch.tolist(),
            before.tolist(), strict=True,
        ):
            if counted_before and t_before >= min(analyzer.next_sweep, analyzer.release_due):
                yield from self._ticks(ts, lo, i)
            yield (t, linktype, buf, at, length)
            lo = i + 1
        if lo < n and ts[n - 1] >= min(analyzer.next_sweep, analyzer.release_due):
            yield from self._ticks(ts, lo, n)

    def _ticks(self, ts: np.ndarray, lo: int, hi: int) -> Iterator[Record]:
        """Ticks for the counted packets lo..hi-1 (times not decreasing) at which a timer fires."""
        analyzer = self.analyzer
        while lo < hi:
            due = min(analyzer.next_sweep, analyzer.release_due)
            j = max(lo, int(np.searchsorted(ts, due)))
            if j >= hi:
                return
            self.ticks += 1
            yield (float(ts[j]), TICK, b"", 0, 0)
            lo = j + 1


class Split(NamedTuple):
    """How one chunk's records divide between this module and the per-packet loop."""

    take: np.ndarray  # bool: counted here (a settled flow's packet, or another shard's)
    foreign: np.ndarray  # bool: another shard's packet (Config.shard_count)
    vals: np.ndarray  # slot * 2 + direction of the record's settled flow, or -1
    payload: np.ndarray  # transport payload bytes
    left: np.ndarray  # settled slots whose packets the loop takes in this chunk


def _split(
    analyzer: Analyzer, chunk: RecordChunk, rows: np.ndarray, whole: np.ndarray, frame: np.ndarray,
    caplen: np.ndarray, ts: np.ndarray, min_idle: float,
) -> Split | None:
    """None when the loop had better take the whole chunk."""
    settled = analyzer.settled
    assert settled is not None
    n = len(frame)
    head = rows[:, 16:]
    facts = fast_path_facts(head, caplen, chunk.linktype)
    facts.v4 &= whole
    facts.v6 &= whole
    fast = facts.v4 | facts.v6
    off_path = np.flatnonzero(~fast)
    if len(off_path) * 2 > n:
        return None  # mostly tunnels, VLANs...: checking each against the settled flows costs more than it saves
    config = analyzer.config
    foreign = np.zeros(n, dtype=bool)
    if config.shard_count > 1:
        # Shards split by flow hash; what the loop's shard test would skip is skipped here.
        foreign = fast & (shard_numbers(head, facts.v6, config.shard_count) != config.shard_index)
    vals = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(fast & ~foreign)
    if settled.entries and len(idx):
        words, nwords = key_words(head[idx], facts.v6[idx])
        vals[idx] = settled.lookup(words, facts.proto[idx], nwords)
    hit = vals >= 0
    slot = np.where(hit, vals >> 1, 0)
    loop_slots = np.zeros(settled.capacity, dtype=bool)  # slots with a packet the loop must see
    loop_slots[slot[hit & (facts.proto == TCP) & ((facts.flags & SYN_FIN_RST) != 0)]] = True
    # A record off the fast path (a VLAN tag, IP options, a tunnel) may carry a settled flow's packet.
    tables = {TCP: analyzer.table.tcp, UDP: analyzer.table.udp}
    buf = chunk.buf
    for at, length in zip(frame[off_path].tolist(), caplen[off_path].tolist(), strict=True):
        pkt = decode(chunk.linktype, buf, at, length)
        if pkt is None or pkt is MALFORMED:
            continue
        if pkt[0] == FRAGMENT:
            return None  # what a reassembled datagram carries is known only once it is whole
        side = tables.get(pkt[0], {}).get(flow_key(pkt[1], pkt[2], pkt[3], pkt[4]))
        if side is not None and side.flow is not None and side.flow.slot is not None:
            loop_slots[side.flow.slot] = True
    take = hit & ~loop_slots[slot]
    # A gap as long as the shortest idle timeout could let a sweep end the flow inside the chunk.
    # No packet as late as that after the flow's last one before the chunk rules out every gap.
    late = slot[take & (ts - settled.last[slot] >= min_idle)]
    if len(late):
        loop_slots[late] = True
        take &= ~loop_slots[slot]
    return Split(take | foreign, foreign, vals, facts.payload, np.unique(slot[hit & ~take]))


def _refresh_last(settled: SettledFlows, slots: np.ndarray) -> None:
    """Slots whose packets took the loop: their flow's last time is on its sides now."""
    for slot in slots.tolist():
        sides = settled.sides[slot]
        if sides is not None:
            a, b = sides
            settled.last[slot] = max(settled.last[slot], a.ts, b.ts)


def _rows(buf: bytes, hdr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each record's header and first HEAD frame bytes as one row (one gather for the chunk), and
    whether the row lies whole in the buffer (the last records' may not: their tails are zeros,
    and the loop takes them)."""
    width = 16 + HEAD
    a = np.frombuffer(buf, dtype=np.uint8)
    whole = hdr + width <= len(a)
    if len(a) < width:
        a = np.concatenate((a, np.zeros(width - len(a), dtype=np.uint8)))
    windows = np.lib.stride_tricks.as_strided(a, (len(a) - width + 1, width), (1, 1), writeable=False)
    rows = windows[np.minimum(hdr, len(a) - width)]
    cut = np.flatnonzero(~whole)
    for i, at in zip(cut.tolist(), hdr[cut].tolist(), strict=True):
        rows[i] = 0
        tail = a[at:]
        rows[i, : len(tail)] = tail
    return rows, whole


def _seconds(hi: np.ndarray, lo: np.ndarray, per_sec: int) -> tuple[np.ndarray, np.ndarray]:
    """divmod(hi << 32 | lo, per_sec) for each record (a pcapng timestamp: seconds and the rest)."""
    units = (hi.astype(np.uint64) << np.uint64(32)) | lo
    if per_sec >= 1 << 64:  # a resolution finer than 2^-64 s: no whole second fits in the count
        return np.zeros_like(units), units
    per = np.uint64(per_sec)
    return units // per, units % per


def _header_words(rows: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seconds, fraction, caplen) of the record headers (the rows' first 12 bytes)."""
    words = np.ascontiguousarray(rows[:, :12]).view(np.dtype(order + "u4"))
    return words[:, 0], words[:, 1], words[:, 2].astype(np.int32)  # a caplen is at most MAX_RECORD
