"""Parquet sink: flow records in columnar form, for pandas, DuckDB, Polars or Spark.

Arrow schema (`SCHEMA`), one row per flow, `schema.FLOW_COLUMNS` in their order
(``flow_id`` as text, since the monitor's ids are):
``ts_start``/``ts_end`` are ``timestamp[us, UTC]`` (pcap resolution), ports ``int32``, counters
``int64``, ``assigned`` a ``list<string>``, ``findings`` a ``list<struct<kind, severity, message>>``
and ``meta`` JSON text (its keys differ from protocol to protocol, which a struct column cannot
hold without inventing nulls). Rows are written in row groups of `ROW_GROUP` records so memory stays
bounded however long the capture.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import _core
from ..model import FlowRecord
from . import arrow_columns
from .meta_json import meta_of_json
from .safeopen import create_output
from .schema import FLOW_COLUMNS

ROW_GROUP = 8192
FINDING_TYPE = pa.struct([("kind", pa.string()), ("severity", pa.string()), ("message", pa.string())])
_TYPES = {
    "flow_id": pa.string(),  # a number from analyze, text from the monitor (run id prefix): text here
    "community_id": pa.string(),
    "pcap": pa.string(),
    "ts_start": pa.timestamp("us", tz="UTC"),
    "ts_end": pa.timestamp("us", tz="UTC"),
    "duration": pa.float64(),
    "transport": pa.string(),
    "src_ip": pa.string(),
    "src_port": pa.int32(),
    "dst_ip": pa.string(),
    "dst_port": pa.int32(),
    "orientation": pa.string(),
    "protocol": pa.string(),
    "confidence": pa.float64(),
    "assigned": pa.list_(pa.string()),
    "packets_c2s": pa.int64(),
    "packets_s2c": pa.int64(),
    "bytes_c2s": pa.int64(),
    "bytes_s2c": pa.int64(),
    "state": pa.string(),
    "history": pa.string(),
    "meta": pa.string(),
    "findings": pa.list_(FINDING_TYPE),
}
SCHEMA = pa.schema([(name, _TYPES[name]) for name in FLOW_COLUMNS])  # schema.py's columns, in its order


_INT64 = 2**63
TIME_RAW_KEY = "time_out_of_range"  # as portwatch.frames: seconds a timestamp column cannot hold


def _micros(ts: Any) -> int | None:
    """Microseconds, or None (a null timestamp) for a time past what int64 microseconds hold."""
    try:
        micros = round(ts * 1e6)
    except (OverflowError, ValueError, TypeError):  # inf, nan, None
        return None
    return micros if -_INT64 < micros < _INT64 else None


def _meta_text(meta: Any, raw: dict[str, float]) -> str:
    """`json.dumps(meta, ensure_ascii=False, sort_keys=True)`, with the times the timestamp
    columns cannot hold under `TIME_RAW_KEY`. A core `Meta` is written by the core
    (`Meta.json_sorted`, the same text) without becoming a dict."""
    if not raw and type(meta) is _core.Meta:
        text = meta.json_sorted()
        if text is not None:
            return text
    v = dict(meta or {})
    if raw:
        v[TIME_RAW_KEY] = {**v.get(TIME_RAW_KEY, {}), **raw}
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def to_row(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """A record dict (`FlowRecord.as_dict()` shape, epoch-second floats) as its column values, in
    `SCHEMA` order; it keeps no reference to the dict's `meta` (made its JSON text) or lists."""
    out = []
    raw: dict[str, float] = {}
    for name in SCHEMA.names:
        v = r.get(name)
        if name in ("ts_start", "ts_end"):
            micros = _micros(v)
            if micros is None and isinstance(v, (int, float)):
                raw[name] = float(v)  # kept as a number in meta, the column null
            v = micros
        elif name == "meta":
            v = _meta_text(v, raw)  # after the times: SCHEMA lists meta after them
        elif name == "assigned":
            v = list(v or [])
        elif name == "flow_id":
            v = None if v is None else str(v)
        elif name == "findings":
            v = [{k: f[k] for k in ("kind", "severity", "message")} for f in v or ()]
        out.append(v)
    return tuple(out)


def rows_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    """`to_row` values to an Arrow table of `SCHEMA`."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in SCHEMA.names]
    arrays = []
    for field, values in zip(SCHEMA, columns, strict=True):
        try:
            arrays.append(arrow_columns.build(values, field.type))  # pandas left unimported
        except arrow_columns.Unbuildable:
            arrays.append(_converted(values, field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _converted(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """A column by pyarrow's conversion of Python values (what `arrow_columns` cannot build)."""
    if pa.types.is_timestamp(type_):
        return pa.array(values, type=pa.int64()).cast(type_)
    return pa.array(values, type=type_)


def to_table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Record dicts (`FlowRecord.as_dict()` shape, epoch-second floats) to an Arrow table of `SCHEMA`."""
    return rows_table([to_row(r) for r in records])


def from_table(table: pa.Table) -> list[dict[str, Any]]:
    """Back to record dicts (`FlowRecord.as_dict()` shape, timestamps as epoch seconds)."""
    table = table.select([n for n in SCHEMA.names if n in table.column_names])
    for name in ("ts_start", "ts_end"):
        if name in table.column_names:
            # Seconds as floats, not datetime objects: to_pylist builds those ten times slower.
            micros = table[name].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            seconds = pc.divide(micros.cast(pa.float64(), safe=False), 1e6)  # past 2^53 us: nearest float
            table = table.set_column(table.column_names.index(name), name, seconds)
    rows = table.to_pylist()
    for r in rows:
        r["meta"] = meta_of_json(r.get("meta"))
    return rows


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return from_table(pq.read_table(path))


class ParquetWriter:
    """Write flow records to `path`, a row group at a time. A record waits for its row group as
    its column values (`to_row`), its metadata already the column's JSON text, not as a dict of
    Python objects: the record and its facts are freed as soon as it is written."""

    def __init__(self, path: str | os.PathLike[str], compression: str = "zstd") -> None:
        self.path = os.fspath(path)
        # Held until close() (the writer writes row groups into it); a symbolic link is refused.
        self._file = open(create_output(self.path), "wb")  # noqa: SIM115
        try:
            self._writer = pq.ParquetWriter(self._file, SCHEMA, compression=compression)
        except BaseException:
            self._file.close()
            raise
        self._buffer: list[tuple[Any, ...]] = []
        self.rows = 0

    def write(self, rec: FlowRecord | Mapping[str, Any]) -> None:
        self._add(to_row(rec.as_dict(copy=False) if isinstance(rec, FlowRecord) else rec))

    def write_lines(self, rows: list[tuple[Any, ...]], records: int) -> None:
        """Rows the core made of records no finding came of (`_core.QuietLines` in the "parquet"
        form: `to_row`'s values), buffered as `write` buffers one."""
        for row in rows:
            self._add(row)

    def _add(self, row: tuple[Any, ...]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._writer.write_table(rows_table(self._buffer))
            self.rows += len(self._buffer)
            self._buffer.clear()

    def close(self) -> None:
        try:
            self.flush()
            self._writer.close()
        finally:
            self._file.close()

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
