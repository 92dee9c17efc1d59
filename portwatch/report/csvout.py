"""CSV sink. Cells are neutralised against formula injection: a spreadsheet evaluates a cell that
starts with = + - @ (or a tab/CR), and every text cell here may hold attacker bytes."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from ..model import FlowRecord

COLUMNS = (
    "pcap", "ts_start", "ts_end", "transport", "src_ip", "src_port", "dst_ip", "dst_port", "orientation",
    "protocol", "confidence", "assigned", "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "meta",
    "findings",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def flat_row(rec: FlowRecord) -> dict[str, Any]:
    d = rec.as_dict()
    d["assigned"] = " ".join(d["assigned"])
    d["meta"] = json.dumps(d["meta"], ensure_ascii=False, sort_keys=True)
    d["findings"] = json.dumps(d["findings"], ensure_ascii=False)
    d.setdefault("pcap", "")
    return {k: safe_cell(d[k]) for k in COLUMNS}


class CsvWriter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        self.writer.writeheader()

    def write(self, rec: FlowRecord) -> None:
        self.writer.writerow(flat_row(rec))

    def close(self) -> None:
        self.stream.flush()
