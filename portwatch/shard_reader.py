"""Read one shard's packets of a classic pcap without paying for the other shards' packets.

When N processes split one capture by flow hash, each still has to get past every packet of the
file. Through the pipeline a packet of another shard costs a decode, a flow-table miss and a hash
(several microseconds in Python), which caps the speed-up of N processes well below N. This reader
walks the record headers (a fraction of a microsecond per record), computes the shard of a whole
chunk of packets at once with numpy, and yields only the records of its shard, plus every record
whose shard it does not decide (anything but Ethernet + IPv4 without options carrying TCP or UDP,
the pipeline's fast path, and anything the fast path would count as malformed). Those records go
to every shard; the pipeline's own `shard_of` test keeps each flow in one shard, and their counters
(malformed, non-IP, fragments...) stay the same in every shard, as `parallel.merge_stats` expects.

The shard assignment is the pipeline's: same fast-path conditions as `Analyzer.run`, same key
bytes (addresses and ports as they sit in the packet), same hash as `flows.shard_of`. Records come
in file order with the timestamps the generic reader computes. Only plain (uncompressed) classic
pcap is handled; `open_shard` returns None for anything else, and the caller reads all records.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from itertools import chain, repeat

import numpy as np

from .capture.sources import MAX_RECORD, PCAP_MAGICS, Record
from .model import CaptureStats
from .sanitize import clean_text

CHUNK = 1 << 20  # the generic reader's size: a larger one costs page faults and memory, and gains nothing
ETHERNET = 1


class ShardReader:
    """Records of shard `index` of `count` from a classic pcap; `packets`/`bytes` count the whole file."""

    def __init__(self, path: str, index: int, count: int, stats: CaptureStats, magic: bytes) -> None:
        self.path = path
        self.name = clean_text(os.path.basename(path), 255)
        self.index = index
        self.count = count
        self.stats = stats
        self.size = os.path.getsize(path)
        self.bytes_read = 0
        self.packets = 0  # every record of the file read so far, this shard's or not
        self.bytes = 0
        self.order, self.tick = PCAP_MAGICS[magic]

    def __iter__(self) -> Iterator[Record]:
        # A list of records per chunk, flattened in C: the consumer's next() runs no Python code.
        return chain.from_iterable(self._batches())

    def _batches(self) -> Iterator[list[Record]]:
        with open(self.path, "rb") as fh:
            yield from self._chunks(fh)

    def _chunks(self, fh: object) -> Iterator[list[Record]]:
        head = fh.read(24)  # type: ignore[attr-defined]
        self.bytes_read = len(head)
        if len(head) < 24:
            self.stats.error = self.stats.error or f"{self.name}: truncated pcap file header"
            return
        order = self.order
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", head, 4)
        linktype = network & 0x0FFFFFFF
        limit = max(snaplen, 65535) if 0 < snaplen <= MAX_RECORD else MAX_RECORD
        caplen_at = struct.Struct(order + "I").unpack_from
        carry = b""
        file_off = 24  # file offset of carry[0]
        while True:
            data = fh.read(CHUNK)  # type: ignore[attr-defined]
            self.bytes_read += len(data)
            buf = carry + data if carry else data
            if not buf:
                return
            # Walk the record headers: the only per-record Python work for other shards' packets.
            offs: list[int] = []
            append = offs.append
            off = 0
            end = len(buf)
            corrupt = None
            while off + 16 <= end:
                (caplen,) = caplen_at(buf, off + 8)
                if caplen > limit:
                    corrupt = caplen
                    break
                nxt = off + 16 + caplen
                if nxt > end:
                    break
                append(off)
                off = nxt
            if offs:
                yield self._select(buf, offs, linktype)
            if corrupt is not None:
                self.stats.error = self.stats.error or (
                    f"{self.name}: corrupt record at byte offset {file_off + off}: caplen {corrupt} exceeds {limit}"
                )
                return
            carry = buf[off:]
            file_off += off
            if not data:  # end of file: what is left is a cut record
                if len(carry) < 16:
                    self.stats.error = self.stats.error or f"{self.name}: truncated record header at end of file"
                else:
                    (caplen,) = caplen_at(carry, 8)
                    self.stats.error = self.stats.error or (
                        f"{self.name}: truncated packet data at end of file ({len(carry) - 16} of {caplen} bytes)"
                    )
                return

    def _select(self, buf: bytes, offs: list[int], linktype: int) -> list[Record]:
        a = np.frombuffer(buf, dtype=np.uint8)
        hdr = np.asarray(offs, dtype=np.int64)
        words = _words(a, hdr, self.order)  # sec, frac, caplen per record
        sec, frac, caplen = words[:, 0], words[:, 1], words[:, 2].astype(np.int64)
        o = hdr + 16
        n = len(offs)
        self.packets += n
        self.bytes += int(caplen.sum())
        keep = np.ones(n, dtype=bool)
        if linktype == ETHERNET and self.count > 1:
            keep = ~self._other_shard(a, o, caplen)
        idx = np.flatnonzero(keep)
        ts = (sec[idx].astype(np.float64) + frac[idx].astype(np.float64) * self.tick).tolist()
        return list(zip(ts, repeat(linktype), repeat(buf), o[idx].tolist(), caplen[idx].tolist()))

    def _other_shard(self, a: np.ndarray, o: np.ndarray, caplen: np.ndarray) -> np.ndarray:
        """True for the records the pipeline would take on its fast path into another shard's flow."""
        fast = caplen >= 54
        oc = np.where(fast, o, 0)  # indices below stay inside the buffer for the short records too

        def b(k: int) -> np.ndarray:
            return a[oc + k].astype(np.int64)

        fast &= (b(12) == 8) & (b(13) == 0) & (b(14) == 0x45) & ((b(20) & 0x3F) == 0) & (b(21) == 0)
        proto = b(23)
        pend = np.minimum(oc + 14 + ((b(16) << 8) | b(17)), oc + caplen)
        poff_tcp = oc + 34 + ((b(46) >> 4) << 2)
        tcp_ok = (proto == 6) & (poff_tcp <= pend) & (poff_tcp >= oc + 54)
        udp_ok = (proto == 17) & (b(36) != 0x12) & (b(36) != 0x08) & ((((b(38) << 8) | b(39))) >= 8)
        decided = fast & (tcp_ok | udp_ok)
        # flows.shard_of on the 12 key bytes (src, dst, sport, dport) at offset 26.
        src = (b(26) << 24) | (b(27) << 16) | (b(28) << 8) | b(29)
        dst = (b(30) << 24) | (b(31) << 16) | (b(32) << 8) | b(33)
        mixed = (src ^ dst ^ ((b(34) << 8) | b(35)) ^ ((b(36) << 8) | b(37))).astype(np.uint64)
        shard = ((mixed * np.uint64(0x9E3779B1)) >> np.uint64(16)) % np.uint64(self.count)
        return decided & (shard != np.uint64(self.index))


def _words(a: np.ndarray, hdr: np.ndarray, order: str) -> np.ndarray:
    """(sec, frac, caplen) of each record header at the offsets `hdr` of the byte array `a`."""
    idx = hdr[:, None] + np.arange(12, dtype=np.int64)[None, :]
    raw = np.ascontiguousarray(a[idx])
    return raw.view(np.dtype(order + "u4")).reshape(len(hdr), 3).astype(np.int64)


def open_shard(path: str, index: int, count: int, stats: CaptureStats) -> ShardReader | None:
    """A reader of shard `index` of `count` of `path`, or None when it is not a plain classic pcap."""
    if count < 2 or path == "-":
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return None
    if head not in PCAP_MAGICS:
        return None
    return ShardReader(path, index, count, stats, head)
