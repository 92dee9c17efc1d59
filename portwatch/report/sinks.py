"""One sink interface and one registry of the record formats `portwatch analyze --format` writes.

A sink takes finished flow records one at a time (`write`) and is closed once (`close`). Adding a
format is one module with its writer and one entry in `SINKS`: the CLI's `--format` choices, its
help text and whether the format needs a file (`-o`) come from here. ``console`` is not a sink: it
is the report rendered from the summary once every record is in (`report.console`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO

from .. import _core
from ..model import FlowRecord
from .schema import META_COLUMNS


class Sink(Protocol):
    def write(self, rec: FlowRecord) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkFormat:
    name: str
    help: str
    # Text formats are written to a stream (stdout or -o); binary ones need the -o path.
    open_stream: Callable[[TextIO], Sink] | None = None
    open_path: Callable[[str], Sink] | None = None
    # Writes each record's meta as JSON as it comes: the core serializes it on its own thread.
    meta_json: bool = False
    # The core's line format ("jsonl", "eve", "csv"; "sqlite", "parquet": the table's rows) in which
    # its sink's `write_lines(data, records)` takes the records no finding came of, as the core
    # wrote them (`Analyzer(on_line=..., line_format=...)`); nothing else of them is needed.
    quiet_lines: str | None = None

    @property
    def needs_path(self) -> bool:
        return self.open_path is not None


def _jsonl(out: TextIO) -> Sink:
    from .jsonl import JsonlWriter

    return JsonlWriter(out)


def _csv(out: TextIO) -> Sink:
    from .csvout import CsvWriter

    return CsvWriter(out)


def _eve(out: TextIO) -> Sink:
    from .eve import EveWriter

    return EveWriter(out)


def _parquet(path: str) -> Sink:
    from .parquet import ParquetWriter  # pyarrow: imported only when asked for

    return ParquetWriter(path)


def _sqlite(path: str) -> Sink:
    from .sqlite import SqliteWriter

    # safe: the database and its -wal/-shm are opened first, never through a symbolic link, and
    # SQLite must open those; the directory is the user's choice (as for every -o path)
    return SqliteWriter(path, safe=True, check_parent=False)


SINKS: dict[str, SinkFormat] = {f.name: f for f in (
    SinkFormat("jsonl", "one flow record per line", open_stream=_jsonl, meta_json=True, quiet_lines="jsonl"),
    # The core writes the csv rows with its own copy of the flat columns: only while it is the same.
    SinkFormat("csv", "one flow record per row, metadata in flat columns", open_stream=_csv,
               quiet_lines="csv" if tuple(_core.CSV_META_COLUMNS) == META_COLUMNS else None),
    SinkFormat("eve", "Suricata EVE JSON: a flow event per flow, an alert per finding", open_stream=_eve,
               meta_json=True, quiet_lines="eve"),
    SinkFormat("parquet", "flow records as a Parquet file (needs -o)", open_path=_parquet, quiet_lines="parquet"),
    SinkFormat("sqlite", "flows and findings tables in a SQLite database (needs -o)", open_path=_sqlite,
               quiet_lines="sqlite"),
)}
TABLE_FORMATS = ("console", "jsonl", "csv")  # what --findings-only and --servers write
FORMATS = ("console", *SINKS)
