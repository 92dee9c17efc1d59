"""JSON-lines sink: one flow record per line, flushed per line so a reader never sees half a record."""

from __future__ import annotations

import json
from typing import Any, TextIO

import orjson

from ..model import FlowRecord

# One encoder for every line: json.dumps with options builds a new JSONEncoder per call.
_STDLIB_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_line(obj: dict[str, Any]) -> str:
    """One compact JSON object, UTF-8 text as is. orjson writes it about ten times faster than the
    standard library; what it refuses (integers past 64 bits, lone surrogates) falls back to it."""
    try:
        return orjson.dumps(obj).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return _STDLIB_ENCODE(obj)


def encode_bytes(obj: dict[str, Any]) -> bytes | None:
    """`encode_line(obj) + "\\n"` as UTF-8 bytes, or None when only the standard library can write it."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return None


class JsonlWriter:
    def __init__(self, stream: TextIO, flush_each: bool = False) -> None:
        self.stream = stream
        self.flush_each = flush_each
        # A RecordFile (-o) takes the encoded bytes as they are, not decoded to text and encoded back.
        self._write_bytes = getattr(stream, "write_bytes", None)

    def write(self, rec: FlowRecord) -> None:
        obj = rec.as_dict(copy=False)
        data = encode_bytes(obj) if self._write_bytes is not None else None
        if data is not None:
            self._write_bytes(data)
        else:
            self.stream.write(encode_line(obj) + "\n")
        if self.flush_each:
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
