"""Capture sources: classic pcap and pcapng files (plain or gzipped), standard input.

A source yields records as `(ts, linktype, buf, offset, length)`: the frame is `buf[offset:offset+length]`.
Handing out the chunk and an offset instead of a sliced copy lets the decoder `struct.unpack_from`
straight on the bytes that were read (DESIGN.md: the hot path makes no per-packet copies).

Framing is hand-written with `struct` rather than taken from dpkt: dpkt builds a header object per
record, which alone costs more than the whole per-packet budget of a classified flow
(benchmarks/README.md has the measurement). Both formats are simple and fully specified
(pcap: tcpdump.org/manpages/pcap-savefile.5; pcapng: draft-ietf-opsawg-pcapng).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from ..model import CaptureStats
from ..sanitize import clean_text

CHUNK = 1 << 20
# A record larger than this is not a packet but a corrupt length field; refusing it bounds memory.
MAX_RECORD = 1 << 18

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

Record = tuple[float, int, bytes, int, int]
BATCH_CHUNK = 2 << 20  # a whole-chunk reader's read: ~2,500 packets; larger saves little time and costs peak memory


class RecordChunk(NamedTuple):
    """Records that sit whole in `buf`, of one link type and clock: 16-byte headers at `offsets`
    (two time words, caplen, original length), each frame right after its header.

    A classic pcap record is laid out so; so is a pcapng Enhanced Packet Block from its timestamp
    on, where the two time words are the high and low halves of one count of ticks, `per_sec` to
    the second.
    """

    buf: bytes
    offsets: list[int]
    linktype: int
    order: str  # struct byte order of the headers
    tick: float  # seconds per unit of the fraction field (per tick, in pcapng)
    per_sec: int = 0  # pcapng: ticks per second; 0: a classic pcap's seconds and fraction


def chunk_records(chunk: RecordChunk) -> Iterator[Record]:
    """A chunk's records one by one, as the per-packet loop reads them."""
    stamp = struct.Struct(chunk.order + "III").unpack_from  # the time words, caplen
    buf, linktype, tick, per_sec = chunk.buf, chunk.linktype, chunk.tick, chunk.per_sec
    if per_sec:
        # Whole seconds and the fraction apart, as a classic pcap has them: the count times the
        # tick would be off by up to a unit in the last place (a fifth of a microsecond today).
        for off in chunk.offsets:
            hi, lo, caplen = stamp(buf, off)
            sec, frac = divmod(hi << 32 | lo, per_sec)
            yield (sec + frac * tick, linktype, buf, off + 16, caplen)
    else:
        for off in chunk.offsets:
            sec, frac, caplen = stamp(buf, off)
            yield (sec + frac * tick, linktype, buf, off + 16, caplen)


class CaptureError(Exception):
    """The input cannot be read as a capture at all (bad magic, empty, unreadable)."""


class CaptureSource:
    """Iterate the records of one capture; `stats.error` says why reading stopped early, if it did."""

    def __init__(self, path: str | os.PathLike[str], stats: CaptureStats | None = None) -> None:
        self.path = os.fspath(path)
        # The name goes into records and messages: a file name is text someone else may have chosen.
        self.name = "-" if self.path == "-" else clean_text(os.path.basename(self.path), 255)
        self.stats = stats if stats is not None else CaptureStats()
        self.bytes_read = 0  # of the underlying (possibly compressed) file, for progress
        self.size = self._size()
        self._fh: BinaryIO | None = None
        self._raw: BinaryIO | None = None
        self._head = b""
        self._open()

    def _size(self) -> int | None:
        if self.path == "-":
            return None
        try:
            return os.path.getsize(self.path)
        except OSError as exc:
            raise CaptureError(f"{self.path}: {exc.strerror or exc}") from None

    def _open(self) -> None:
        if self.path == "-":
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise CaptureError(f"{self.path}: {exc.strerror or exc}") from None
        self._raw = raw
        head = raw.read(4)
        if head[:2] == GZIP_MAGIC:
            fh: BinaryIO = gzip.GzipFile(fileobj=_Prepend(head, raw))  # type: ignore[assignment]
            try:
                head = fh.read(4)
            except (OSError, EOFError, zlib.error) as exc:
                raise CaptureError(f"{self.name}: corrupt gzip data ({exc})") from None
        else:
            fh = raw
        self._fh = fh
        self._head = head
        if not head:
            raise CaptureError(f"{self.name}: empty file, not a capture")
        if head not in PCAP_MAGICS and head != PCAPNG_MAGIC:
            raise CaptureError(f"{self.name}: not a pcap or pcapng capture (starts with {head.hex()})")

    def close(self) -> None:
        for fh in (self._fh, self._raw):
            if fh is not None and fh is not sys.stdin.buffer:
                fh.close()

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reads(self, size: int) -> Iterator[bytes]:
        """The file after its magic bytes, `size` at most per read; a read error ends it (stats.error)."""
        assert self._fh is not None
        # read1 on a gzip stream returns what one inflate step gave: data before a corrupt or
        # truncated part is kept, where read(size) would drop the whole read with the error.
        read = self._fh.read1 if self._fh is not self._raw else self._fh.read  # type: ignore[attr-defined]
        while True:
            try:
                data = read(size)
            except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data
                self.stats.error = f"{self.name}: read error: {exc}"
                return
            if not data:
                return
            if self._raw is not None and self._raw is not self._fh:
                with contextlib.suppress(OSError, ValueError):  # a pipe has no position
                    self.bytes_read = self._raw.tell()
            else:
                self.bytes_read += len(data)
            yield data
            del data  # not kept while the next one is read

    def __iter__(self) -> Iterator[Record]:
        for chunk in self.record_chunks(CHUNK):
            yield from chunk_records(chunk)

    def record_chunks(self, size: int = BATCH_CHUNK) -> Iterator[RecordChunk]:
        """The records a chunk at a time, for whole-chunk (numpy) work; reads `size` at a time.

        Same records, timestamps and errors as iterating the source; each chunk is a buffer and
        the offsets of the record headers that sit whole in it. A classic pcap record that
        straddles two reads comes as a chunk of its own (assembled alone, not by copying the next
        read behind it); a pcapng chunk ends at any block other than a packet of its link type
        and clock.
        """
        if self._head == PCAPNG_MAGIC:
            return _pcapng_chunks(self._with_head(size), self.stats, self.name)
        return _pcap_chunks(self._head, self._reads(size), self.stats, self.name)

    def _with_head(self, size: int) -> Iterator[bytes]:
        yield self._head
        yield from self._reads(size)


class _Prepend(io.RawIOBase):
    """A read-only stream that replays already-read magic bytes before the rest of `raw`."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Buffer:
    """The reads of a pcapng file as one stream of blocks: `need(n)` makes n bytes available at
    `buf[off:]`. A block that spans two reads is assembled alone; the read it ends in goes on as
    the buffer after it, uncopied (so a read is never copied whole, and at most one waits)."""

    __slots__ = ("base", "buf", "chunks", "eof", "next", "next_base", "next_off", "off", "read")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buf = b""
        self.off = 0
        self.base = 0  # file offset of buf[0], for messages
        self.next: bytes | None = None  # the read after `buf`, from `next_off` on
        self.next_off = 0
        self.next_base = 0  # file offset of next[0]
        self.read = 0  # bytes read so far
        self.eof = False

    def need(self, n: int) -> bool:
        """Make at least n bytes available from `off`; False at end of input."""
        if len(self.buf) - self.off >= n:
            return True
        if self.off >= len(self.buf) and self.next is not None:
            self.buf, self.off, self.base, self.next = self.next, self.next_off, self.next_base, None
            if len(self.buf) - self.off >= n:
                return True
        rest = self.buf[self.off :]
        self.base += self.off
        self.buf = b""  # not kept while the next read comes
        while len(rest) < n:
            if self.next is None:
                if self.eof:
                    break
                try:
                    self.next, self.next_off, self.next_base = next(self.chunks), 0, self.read
                except StopIteration:
                    self.eof = True
                    break
                self.read += len(self.next)
            nxt = self.next
            piece = nxt[self.next_off : self.next_off + n - len(rest)]
            rest += piece
            self.next_off += len(piece)
            if self.next_off >= len(nxt):
                self.next = None
        self.buf, self.off = rest, 0
        return len(rest) >= n

    def remaining(self) -> int:
        waiting = len(self.next) - self.next_off if self.next is not None else 0
        return len(self.buf) - self.off + waiting


def _pcap_chunks(magic: bytes, reads: Iterator[bytes], stats: CaptureStats, name: str) -> Iterator[RecordChunk]:
    """`CaptureSource.record_chunks` of a classic pcap: `reads` is the file after its 4 magic bytes."""
    order, tick = PCAP_MAGICS[magic]
    head = b""
    for data in reads:
        head += data
        if len(head) >= 20:
            break
    if len(head) < 20:
        stats.error = stats.error or f"{name}: truncated pcap file header"
        return
    _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", head, 0)
    linktype = network & 0x0FFFFFFF
    limit = max(snaplen, 65535) if 0 < snaplen <= MAX_RECORD else MAX_RECORD
    caplen_at = struct.Struct(order + "I").unpack_from
    buf, off, base = head, 20, 4  # base: file offset of buf[0]
    del head  # the first read: not to be kept for the whole run
    rest, rest_at = b"", 0  # a record cut by the end of a read, assembled alone
    while True:
        if rest:
            if len(rest) < 16:
                piece = buf[off : off + 16 - len(rest)]
                rest += piece
                off += len(piece)
            if len(rest) >= 16:
                (caplen,) = caplen_at(rest, 8)
                if caplen > limit:
                    stats.error = stats.error or _corrupt(name, rest_at, caplen, limit)
                    return
                piece = buf[off : off + 16 + caplen - len(rest)]
                rest += piece
                off += len(piece)
                if len(rest) == 16 + caplen:
                    yield RecordChunk(rest, [0], linktype, order, tick)
                    rest = b""
        if not rest:
            # The walk over record headers: the only per-record Python work of a chunk.
            offsets: list[int] = []
            append = offsets.append
            end = len(buf)
            last = end - 16  # the last offset where a whole record header fits
            while off <= last:
                caplen = caplen_at(buf, off + 8)[0]
                nxt = off + 16 + caplen
                if nxt > end or caplen > limit:
                    break  # cut by the end of the read, or corrupt: told apart below, once
                append(off)
                off = nxt
            if offsets:
                yield RecordChunk(buf, offsets, linktype, order, tick)
            if off <= last and caplen > limit:
                stats.error = stats.error or _corrupt(name, base + off, caplen, limit)
                return
            if off < end:
                rest, rest_at = buf[off:], base + off
                off = end
        base += len(buf)
        buf = b""  # not kept while the next one is read: one chunk in memory, not two
        data = next(reads, None)
        if data is None:
            if rest:
                stats.error = stats.error or _cut_at_end(name, rest, caplen_at(rest, 8)[0] if len(rest) >= 16 else 0)
            return
        buf, off = data, 0
        data = None


def _corrupt(name: str, at: int, caplen: int, limit: int) -> str:
    return f"{name}: corrupt record at byte offset {at}: caplen {caplen} exceeds {limit}"


def _cut_at_end(name: str, rest: bytes, caplen: int) -> str:
    if len(rest) < 16:
        return f"{name}: truncated record header at end of file"
    return f"{name}: truncated packet data at end of file ({len(rest) - 16} of {caplen} bytes)"


class _Run:
    """Packet blocks gathered for one chunk: header offsets into `buf`, all of one interface kind."""

    __slots__ = ("buf", "ifid", "kind", "offsets", "order")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.buf = b""
        self.kind = (0, 0.0, 0)  # (linktype, seconds per tick, ticks per second)
        self.order = "<"
        self.ifid = -1  # the interface of the last packet, when an EPB: its next ones take the quick walk

    def add(self, buf: bytes, kind: tuple[int, float, int], order: str, at: int, ifid: int) -> Iterator[RecordChunk]:
        """Add the packet whose header is at `at`; the run so far first, when it was of another kind."""
        if self.offsets and kind != self.kind:
            yield from self.flush()
        if not self.offsets:
            self.buf, self.kind, self.order = buf, kind, order
        self.offsets.append(at)
        self.ifid = ifid

    def flush(self) -> Iterator[RecordChunk]:
        """The run as a chunk, if it has packets; the run is empty after, its buffer let go."""
        if self.offsets:
            yield _chunk(self.buf, self.offsets, self.kind, self.order)
            self.offsets = []
        self.buf = b""


def _pcapng_chunks(chunks: Iterator[bytes], stats: CaptureStats, name: str) -> Iterator[RecordChunk]:
    """`CaptureSource.record_chunks` of a pcapng file (`chunks` from its first byte on)."""
    rd = _Buffer(chunks)
    order = "<"
    interfaces: list[tuple[int, float, int]] = []  # (linktype, seconds per timestamp unit, units per second)
    run = _Run()
    epb_at = struct.Struct(order + "III8xI").unpack_from  # type, length, interface, (time,) caplen
    while True:
        if run.offsets and rd.buf is run.buf:
            # The quick walk: Enhanced Packet Blocks of the run's interface, whole in this buffer and
            # sound (what the checks below would accept), are appended without leaving this loop.
            buf, off = run.buf, rd.off
            end = len(buf)
            append = run.offsets.append
            while off + 24 <= end:
                btype, blen, ifid, caplen = epb_at(buf, off)
                if (btype != 6 or ifid != run.ifid or blen & 3 or caplen + 32 > blen or blen > MAX_RECORD + 64
                        or off + blen > end):
                    break
                append(off + 12)
                off += blen
            rd.off = off
            left = end - off
            if left < 12 or struct.unpack_from(order + "I", buf, off + 4)[0] > left:
                # The reader is about to move to a new buffer: hand the run over first, so that the
                # old buffer can go before the next is read.
                buf = b""
                yield from run.flush()
        if not rd.need(12):
            yield from run.flush()
            if rd.remaining():
                stats.error = stats.error or f"{name}: truncated pcapng block header at end of file"
            return
        buf, off = rd.buf, rd.off
        if buf is not run.buf:  # the reader moved to a new buffer: the run so far is whole
            yield from run.flush()
        btype, blen = struct.unpack_from(order + "II", buf, off)
        if btype == 0x0A0D0D0A:  # a section header (the same four bytes in either order)
            yield from run.flush()
            bom = buf[off + 8 : off + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                stats.error = stats.error or f"{name}: corrupt section header (byte-order magic {bom.hex()})"
                return
            interfaces = []
            epb_at = struct.Struct(order + "III8xI").unpack_from
            (blen,) = struct.unpack_from(order + "I", buf, off + 4)
        if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
            yield from run.flush()
            stats.error = stats.error or (
                f"{name}: corrupt pcapng block at byte offset {rd.base + off} (type {btype:#x}, length {blen})"
            )
            return
        if not rd.need(blen):
            yield from run.flush()
            stats.error = stats.error or f"{name}: truncated pcapng block at end of file (type {btype:#x})"
            return
        buf, off = rd.buf, rd.off
        if buf is not run.buf:
            yield from run.flush()
        rd.off = off + blen
        body = off + 8
        body_end = off + blen - 4
        if btype == 6 or btype == 2:  # Enhanced Packet Block, or the obsolete Packet Block
            # From the timestamp on, both lay out as a classic pcap record: two time words,
            # caplen, original length, the frame. Before it: the interface id (32 bits in an EPB;
            # 16, then a drop count, in a PB).
            if body_end - body < 20:
                stats.malformed += 1
                continue
            ifid = struct.unpack_from(order + ("I" if btype == 6 else "H"), buf, body)[0]
            (caplen,) = struct.unpack_from(order + "I", buf, body + 12)
            if ifid >= len(interfaces) or body + 20 + caplen > body_end:
                stats.malformed += 1
                continue
            yield from run.add(buf, interfaces[ifid], order, body + 4, ifid if btype == 6 else -1)
            continue
        yield from run.flush()  # any other block ends the run
        if btype == 1:  # Interface Description Block
            if body_end - body < 8:
                stats.error = stats.error or f"{name}: corrupt interface description block"
                return
            linktype, _res, _snap = struct.unpack_from(order + "HHI", buf, body)
            interfaces.append((linktype, *_if_tsresol(buf, body + 8, body_end, order)))
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp; given a header of its own
            if not interfaces or body_end - body < 4:
                stats.malformed += 1
                continue
            (origlen,) = struct.unpack_from(order + "I", buf, body)
            caplen = min(origlen, body_end - body - 4)
            record = struct.pack(order + "IIII", 0, 0, caplen, origlen) + buf[body + 4 : body + 4 + caplen]
            yield _chunk(record, [0], interfaces[0], order)
        # Section headers were handled above; statistics, name resolution, custom and unknown
        # blocks carry nothing portwatch needs and are skipped by their length.


def _chunk(buf: bytes, offsets: list[int], kind: tuple[int, float, int], order: str) -> RecordChunk:
    linktype, tick, per_sec = kind
    return RecordChunk(buf, offsets, linktype, order, tick, per_sec)


def _if_tsresol(buf: bytes, off: int, end: int, order: str) -> tuple[float, int]:
    """The if_tsresol option of an IDB as (seconds per unit, units per second); default microseconds."""
    while off + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, off)
        if code == 0:
            break
        if code == 9 and length >= 1 and off + 5 <= end:
            value = buf[off + 4]
            exp = value & 0x7F
            if exp > 30:  # a resolution beyond 2^-30 or 10^-30 is corrupt; keep the default
                return 1e-6, 1_000_000
            return (2.0**-exp, 2**exp) if value & 0x80 else (10.0**-exp, 10**exp)
        off += 4 + ((length + 3) & ~3)
    return 1e-6, 1_000_000
