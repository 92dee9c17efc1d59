"""CSV sink. Cells are neutralised against formula injection: a spreadsheet evaluates a cell that
starts with = + - @ (or a tab/CR), and every text cell here may hold attacker bytes.

Columns (`schema.CSV_FLOW_COLUMNS`): the flow record's, then the metadata analysts filter on as
flat columns (`schema.META_COLUMNS`: sni, alpn, ja3, ja4, ...; empty when absent), ``findings``
(JSON) and the whole ``meta`` (JSON) last. ``assigned`` is one cell joined by `schema.LIST_SEP`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import Any, TextIO

from ..model import FlowRecord
from .schema import CSV_FLOW_COLUMNS, META_COLUMNS, join_list

COLUMNS = CSV_FLOW_COLUMNS
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _flat(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)  # alpn: h2,http/1.1
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def flat_row(rec: FlowRecord | Mapping[str, Any]) -> dict[str, Any]:
    d = rec.as_dict() if isinstance(rec, FlowRecord) else dict(rec)
    meta = d.get("meta") or {}
    for key in META_COLUMNS:
        d[key] = _flat(meta.get(key))
    d["assigned"] = join_list(d.get("assigned"))
    d["meta"] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
    d["findings"] = json.dumps(d.get("findings") or [], ensure_ascii=False)
    return {k: safe_cell("" if d.get(k) is None else d[k]) for k in COLUMNS}


class CsvWriter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        self.writer.writeheader()

    def write(self, rec: FlowRecord) -> None:
        self.writer.writerow(flat_row(rec))

    def close(self) -> None:
        self.stream.flush()
