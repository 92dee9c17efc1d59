"""JSON-lines sink: one flow record per line, flushed per line so a reader never sees half a record."""

from __future__ import annotations

import json
from typing import Any, TextIO

import orjson

from .. import _core
from ..model import Finding, FlowRecord


def plain(obj: Any) -> Any:
    """`default=` for json.dumps: a record's `_core.Meta` as its dict."""
    if isinstance(obj, _core.Meta):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _fragment(obj: Any) -> Any:
    """`default=` for orjson: a `_core.Meta` still the core's map as the core's own JSON of it
    (the bytes orjson would write for the dict, without making the dict); else its dict."""
    if isinstance(obj, _core.Meta):
        raw = obj.json()
        return orjson.Fragment(raw) if raw is not None else obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# One encoder for every line: json.dumps with options builds a new JSONEncoder per call.
_STDLIB_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=plain).encode


def encode_line(obj: dict[str, Any]) -> str:
    """One compact JSON object, UTF-8 text as is. orjson writes it about ten times faster than the
    standard library; what it refuses (integers past 64 bits, lone surrogates) falls back to it."""
    try:
        return orjson.dumps(obj, default=_fragment).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return _STDLIB_ENCODE(obj)


def encode_bytes(obj: dict[str, Any]) -> bytes | None:
    """`encode_line(obj) + "\\n"` as UTF-8 bytes, or None when only the standard library can write it."""
    try:
        return orjson.dumps(obj, default=_fragment, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return None


def record_bytes(rec: FlowRecord) -> bytes | None:
    """`encode_bytes(rec.as_dict(copy=False))`: a `FlowRecord`'s line as the core writes it from the
    record's fields (`_core.record_line`: the same bytes without building the dict), else orjson's."""
    if type(rec) is FlowRecord:
        data = _core.record_line(rec, Finding)
        if data is not None:
            return data
    return encode_bytes(rec.as_dict(copy=False))


class JsonlWriter:
    def __init__(self, stream: TextIO, flush_each: bool = False) -> None:
        self.stream = stream
        self.flush_each = flush_each
        # A RecordFile (-o) takes the encoded bytes as they are, not decoded to text and encoded back.
        self._write_bytes = getattr(stream, "write_bytes", None)

    def write(self, rec: FlowRecord) -> None:
        write_bytes = self._write_bytes
        data = record_bytes(rec) if write_bytes is not None else None
        if write_bytes is not None and data is not None:
            write_bytes(data)
        else:
            self.stream.write(encode_line(rec.as_dict(copy=False)) + "\n")
        if self.flush_each:
            self.stream.flush()

    def write_lines(self, data: bytes, records: int) -> None:
        """Whole records' lines as the core wrote them (UTF-8, each ending in a newline)."""
        if self._write_bytes is not None:
            self._write_bytes(data, records)
        else:
            self.stream.write(data.decode())
        if self.flush_each:
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
