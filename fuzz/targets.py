"""Fuzz targets: each takes arbitrary bytes, drives one parser, and checks its contract.

A target raises (AssertionError or any unexpected exception) only when the code under test broke
its contract; every outcome the contract allows (MALFORMED, None, CaptureError, SignatureError,
PolicyError...) returns quietly. The same functions serve the atheris runner (fuzz/atheris_main.py),
the long hypothesis runner (fuzz/hypo_main.py) and the brief CI run (tests/hostile/test_fuzz_brief.py).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Callable
from typing import Any

from portwatch.capture.decode import FRAGMENT, MALFORMED, SUPPORTED_LINKTYPES, decode
from portwatch.capture.reassembly import MAX_PENDING_SEGMENTS, StreamBuffer
from portwatch.capture.sources import MAX_RECORD, CaptureError, CaptureSource, chunk_records
from portwatch.detect.probes import PROBES, get_probe
from portwatch.detect.signature import SignatureError, parse_signature
from portwatch.model import ProbeResult, ProbeStatus
from portwatch.policy import config as policy_config
from portwatch.sanitize import _UNSAFE

# Link types the decoder knows, plus two it does not (it must answer None, not crash).
LINKTYPES = (*sorted(SUPPORTED_LINKTYPES), 147, 0xFFFF)


class Reader:
    """Takes structured values off the front of a byte string (like atheris' FuzzedDataProvider)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def u32(self) -> int:
        chunk = self.data[self.pos : self.pos + 4].ljust(4, b"\0")
        self.pos += 4
        return struct.unpack("<I", chunk)[0]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def rest(self) -> bytes:
        return self.take(self.left())


# ---- decode ------------------------------------------------------------------------------------
def fuzz_decode(data: bytes) -> None:
    """Any frame of any link type: a defined answer, and never a byte read outside the frame.

    The frame is decoded twice, alone and embedded between junk bytes: the answers must agree,
    which proves the decoder honours `off` and `length` (a snaplen-cut record sits in a bigger chunk).
    """
    r = Reader(data)
    linktype = LINKTYPES[r.byte() % len(LINKTYPES)]
    frame = r.rest()
    alone = decode(linktype, frame, 0, len(frame))
    pad = b"\xff" * 7
    embedded = decode(linktype, pad + frame + pad * 64, len(pad), len(frame))
    assert _packet_view(alone, 0) == _packet_view(embedded, len(pad)), (linktype, frame.hex())
    if alone is None or alone is MALFORMED:
        return
    assert isinstance(alone, tuple) and len(alone) == 11
    if alone[0] == FRAGMENT:
        _, src, dst, _key, _proto, foff, _more, buf, doff, dend, _encap = alone
        assert foff >= 0
    else:
        proto, src, dst, sport, dport, flags, seq, buf, doff, dend, _encap = alone
        assert proto in (6, 17)
        assert 0 <= sport < 65536 and 0 <= dport < 65536 and 0 <= flags < 256 and 0 <= seq < 1 << 32
    assert len(src) in (4, 16) and len(dst) == len(src)
    assert 0 <= doff <= dend <= len(frame), (doff, dend, len(frame))


def _packet_view(pkt: Any, shift: int) -> Any:
    """The decoder's answer with the buffer replaced by the bytes it points at."""
    if pkt is None or pkt is MALFORMED:
        return pkt
    head, buf, doff, dend, encap = pkt[:7], pkt[7], pkt[8], pkt[9], pkt[10]
    return (head, bytes(buf[doff:dend]), doff - shift, dend - shift, encap)


# ---- capture readers ---------------------------------------------------------------------------
_TMPDIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def fuzz_sources(data: bytes) -> None:
    """Any file: CaptureError at open, or records inside their chunk and a clean stop."""
    fd, path = tempfile.mkstemp(prefix="pwfuzz-", suffix=".pcap", dir=_TMPDIR)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            src = CaptureSource(path)
        except CaptureError as exc:
            assert "\n" not in str(exc)
            return
        with src:
            count = 0
            seen = []
            for ts, linktype, buf, off, length in src:
                count += 1
                assert isinstance(ts, float) and isinstance(linktype, int)
                assert off >= 0 and 0 <= length <= MAX_RECORD + 64 and off + length <= len(buf)
                decode(linktype, buf, off, length)
                seen.append((ts, linktype, bytes(buf[off : off + length])))
            if not data.startswith(b"\x1f\x8b"):  # gzip inflates: no bound from the file size
                assert count <= len(data) // 16 + 1  # every record costs at least its 16-byte header
            assert src.stats.error is None or "\n" not in src.stats.error
            outcome = (seen, src.stats.error, src.stats.malformed)
        # What the file holds must not depend on how it is read: the same with tiny reads, which
        # cut every block and record across reads (the chunk counter reads 2 MB at a time).
        with CaptureSource(path) as again:
            small = [(ts, lt, bytes(buf[off : off + n])) for chunk in again.record_chunks(7 + len(data) % 61)
                     for ts, lt, buf, off, n in chunk_records(chunk)]
            assert (small, again.stats.error, again.stats.malformed) == outcome
    finally:
        os.unlink(path)


# ---- reassembly --------------------------------------------------------------------------------
def fuzz_reassembly(data: bytes) -> None:
    """Arbitrary segment sequences: bounded state, and the first copy of every byte wins.

    A reference model keeps, per stream offset, the first byte any segment put there; every byte
    the buffer hands to detection must equal it.
    """
    r = Reader(data)
    depth = 1 + (r.byte() << 4 | r.byte()) % 4096
    sb = StreamBuffer(depth)
    isn = r.u32()
    first: dict[int, int] = {}
    base: int | None = None
    if r.byte() & 1:
        sb.syn(isn)
        base = (isn + 1) & 0xFFFFFFFF
    while r.left() > 0:
        op = r.byte()
        delta = (r.byte() << 8 | r.byte()) - (0x4000 if op & 0x80 else 0)
        seq = ((base if base is not None else isn) + delta) & 0xFFFFFFFF
        n = r.byte() % 64 if op & 0x40 else (r.byte() << 4) % 2048
        payload = r.take(n)
        if op & 0x20 and payload:
            payload = bytes([payload[0] ^ 0x5A]) + payload[1:]
        if base is None and payload:
            base = seq
        before = len(sb.data)
        grew = sb.add(seq, payload)
        assert grew == (len(sb.data) > before)
        if payload and base is not None:
            rel = (seq - base) & 0xFFFFFFFF
            if rel >= 1 << 31:
                rel -= 1 << 32
            for i, b in enumerate(payload):
                if 0 <= rel + i < depth:
                    first.setdefault(rel + i, b)
        assert len(sb.data) <= depth
        assert sb.pending_bytes <= depth and len(sb.pending) <= MAX_PENDING_SEGMENTS
        assert sb.pending_bytes == sum(len(p) for p in sb.pending.values())
    for i, b in enumerate(sb.data):
        assert first.get(i) == b, f"byte {i}: kept {b}, first copy was {first.get(i)}"


# ---- probes ------------------------------------------------------------------------------------
_PROBE_NAMES = sorted(PROBES)


def fuzz_probes(data: bytes) -> None:
    """Every registered probe on arbitrary bytes: a ProbeResult whose text is sanitised."""
    r = Reader(data)
    sel = r.byte()
    from_client = bool(sel & 0x80)
    payload = r.rest()
    for name in _PROBE_NAMES if sel & 0x40 else [_PROBE_NAMES[sel % len(_PROBE_NAMES)]]:
        fn = get_probe(name)
        result = fn([payload, payload[::-1]], from_client) if getattr(fn, "units", False) else fn(payload, from_client)
        check_probe_result(name, result)


def check_probe_result(name: str, result: ProbeResult) -> None:
    assert isinstance(result, ProbeResult), name
    assert result.status in (ProbeStatus.NO, ProbeStatus.MATCH, ProbeStatus.MORE), name
    _assert_clean(name, result.meta)


def _assert_clean(where: str, value: Any) -> None:
    if isinstance(value, str):
        assert not _UNSAFE.search(value), f"{where}: unsanitised text {value[:80]!r}"
        assert len(value) <= 65536, f"{where}: unbounded text ({len(value)} chars)"
    elif isinstance(value, dict):
        for k, v in value.items():
            _assert_clean(f"{where}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _assert_clean(where, v)
    else:
        assert value is None or isinstance(value, (int, float, bool)), f"{where}: {type(value).__name__}"


# ---- loaders -----------------------------------------------------------------------------------
def fuzz_signature(data: bytes) -> None:
    """Any TOML text: a Signature or a one-line SignatureError, nothing else."""
    text = data.decode("utf-8", errors="replace")
    try:
        parse_signature(text, "fuzz.toml", "user")
    except SignatureError as exc:
        assert "\n" not in str(exc).rstrip("\n") or "invalid TOML" in str(exc)


def fuzz_policy(data: bytes) -> None:
    """Any TOML text merged over the built-in policy: a Policy or a PolicyError, nothing else."""
    text = data.decode("utf-8", errors="replace")
    policy = policy_config.load_policy()
    with contextlib.suppress(policy_config.PolicyError):
        policy_config._load_into(policy, text, "fuzz.toml")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decode": fuzz_decode,
    "sources": fuzz_sources,
    "reassembly": fuzz_reassembly,
    "probes": fuzz_probes,
    "signature": fuzz_signature,
    "policy": fuzz_policy,
}
