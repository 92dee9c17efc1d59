"""JSON-lines sink: one flow record per line, flushed per line so a reader never sees half a record."""

from __future__ import annotations

import json
from typing import TextIO

from ..model import FlowRecord

# One encoder for every line: json.dumps with options builds a new JSONEncoder per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JsonlWriter:
    def __init__(self, stream: TextIO, flush_each: bool = False) -> None:
        self.stream = stream
        self.flush_each = flush_each

    def write(self, rec: FlowRecord) -> None:
        self.stream.write(_ENCODE(rec.as_dict()) + "\n")
        if self.flush_each:
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
