"""CSV sink. Cells are neutralised against formula injection: a spreadsheet evaluates a cell that
starts with = + - @ (or a tab/CR), and every text cell here may hold attacker bytes.

Columns (`schema.CSV_FLOW_COLUMNS`): the flow record's, then the metadata analysts filter on as
flat columns (`schema.META_COLUMNS`: sni, alpn, ja3, ja4, ...; empty when absent), ``findings``
(JSON) and the whole ``meta`` (JSON) last. ``assigned`` is one cell joined by `schema.LIST_SEP`.
The core writes the rows of records no finding can come of (`core/src/csv_line.rs`), the same
bytes as `flat_row` and `csv.writer` make of them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import Any, TextIO

from .. import _core
from ..model import FlowRecord, peek
from .schema import CSV_FLOW_COLUMNS, META_COLUMNS, join_list

COLUMNS = CSV_FLOW_COLUMNS
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# One encoder each for every row: json.dumps with options builds a new JSONEncoder per call.
_SORTED_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _flat(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)  # alpn: h2,http/1.1
    if isinstance(value, Mapping):
        return _SORTED_JSON(value)
    return value


def flat_row(rec: FlowRecord | Mapping[str, Any]) -> dict[str, Any]:
    d = rec.as_dict(copy=False) if isinstance(rec, FlowRecord) else dict(rec)
    meta = d.get("meta") or {}
    meta_text = None
    if type(meta) is _core.Meta:
        # Still the core's map: the core writes the column's text (the same as json.dumps below)
        # without making the map a dict first; a map Python turned into a dict is encoded here.
        meta_text = meta.json_sorted()
        if meta_text is None:
            meta = meta.to_dict()
    for key in META_COLUMNS:
        d[key] = _flat(peek(meta, key))
    d["assigned"] = join_list(d.get("assigned"))
    d["meta"] = meta_text if meta_text is not None else _SORTED_JSON(meta)
    d["findings"] = _JSON(d.get("findings") or [])
    return {k: safe_cell("" if d.get(k) is None else d[k]) for k in COLUMNS}


class CsvWriter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.writer = csv.writer(stream)
        self.writer.writerow(COLUMNS)

    def write(self, rec: FlowRecord) -> None:
        # The row's values are in COLUMNS' order (flat_row builds it so): DictWriter's own
        # reordering and key check cost as much again.
        self.writer.writerow(flat_row(rec).values())

    def write_lines(self, data: bytes, records: int) -> None:
        """Rows of records with no finding as the core wrote them (`core/src/csv_line.rs`: UTF-8,
        each ending in CRLF, a cell with a line break quoted)."""
        write_bytes = getattr(self.stream, "write_bytes", None)  # a RecordFile (-o): bytes as they are
        if write_bytes is not None:
            write_bytes(data, records)
        else:
            self.stream.write(data.decode())

    def close(self) -> None:
        self.stream.flush()
