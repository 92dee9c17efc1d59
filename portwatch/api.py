"""Python API for notebooks: `analyze` captures, or `read` what the CLI and the monitor wrote.

Both return an `Analysis`, whose DataFrames have the same columns and dtypes whatever the source
(see `portwatch.frames` for every column and dtype):

>>> a = portwatch.analyze("captures/ssh-443.pcap", progress=False)
>>> a.flows          # one row per flow (docs/schema.md)
>>> a.findings       # one row per finding, with its flow's columns
>>> a.servers        # one row per server endpoint
>>> a.summary()      # findings deduplicated per server and kind, worst first
>>> a.to_parquet("out/")   # out/flows.parquet, which portwatch.read("out/") loads back
"""

from __future__ import annotations

import csv
import html
import json
import os
import sqlite3
import sys
import warnings
from collections.abc import Iterable, Mapping
from itertools import islice, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _core, frames
from .inputs import expand
from .model import SEVERITIES, CaptureStats, FlowRecord
from .pipeline import Analyzer, Config, Setup, open_capture
from .report.meta_json import meta_of_json
from .report.parquet import ParquetWriter
from .report.parquet import read_records as read_parquet_records
from .report.schema import split_list
from .sanitize import clean_text
from .tomlguard import check_signature_dirs

PathLike = str | os.PathLike[str]
PARQUET_NAME = "flows.parquet"
TOP_FINDINGS = 10


class Analysis:
    """Flows, findings and servers of one or more captures (or of a file portwatch wrote).

    `flows` is the primary table; `findings`, `servers` and `summary()` derive from it (computed on
    first use). `stats` holds the capture counters when the flows came from `analyze`, `errors`
    the per-capture reasons reading stopped early.
    """

    def __init__(
        self,
        flows: pd.DataFrame,
        *,
        sources: Iterable[str] = (),
        stats: CaptureStats | None = None,
        errors: Iterable[str] = (),
        paths: Mapping[str, str] | None = None,
    ) -> None:
        self._flows = flows
        self.sources = list(sources)
        self.paths = dict(paths or {})  # capture basename -> path, for `packets`
        self.stats = stats
        self.errors = list(errors)
        self._findings: pd.DataFrame | None = None
        self._servers: pd.DataFrame | None = None
        self._summary: pd.DataFrame | None = None

    @property
    def flows(self) -> pd.DataFrame:
        """One row per flow; columns and dtypes in `portwatch.frames`."""
        return self._flows

    @property
    def findings(self) -> pd.DataFrame:
        """One row per finding: flow, kind, severity, message, then the flow's columns."""
        if self._findings is None:
            self._findings = frames.findings_frame(self._flows)
        return self._findings

    @property
    def servers(self) -> pd.DataFrame:
        """One row per server endpoint (see `portwatch.frames.servers_frame`)."""
        if self._servers is None:
            self._servers = frames.servers_frame(self._flows)
        return self._servers

    def summary(self) -> pd.DataFrame:
        """Findings deduplicated per (server, transport, kind), worst first: the console report's view."""
        if self._summary is None:
            self._summary = frames.summary_frame(self._flows)
        return self._summary

    def packets(self, flow: int | pd.Series, capture: PathLike | None = None) -> pd.DataFrame:
        """Every packet of one flow (a row label of `flows`, or the row), read again from its capture.

        `capture` defaults to the file `analyze` read the flow from. See `flow_packets` for the columns.
        """
        row = self._flows.loc[flow] if isinstance(flow, (int, np.integer)) else flow
        if capture is None:
            name = row["pcap"]
            if name is pd.NA or name not in self.paths:
                raise ValueError("which capture holds this flow? pass capture=")
            capture = self.paths[name]
        return flow_packets(row, capture)

    def to_parquet(self, directory: PathLike) -> Path:
        """Write `directory`/flows.parquet (schema in `portwatch.report.parquet`); returns its path."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        path = out / PARQUET_NAME
        with ParquetWriter(path) as writer:
            for rec in frames.iter_frame_records(self._flows):
                writer.write(rec)
        return path

    # ---- display ------------------------------------------------------------------------
    def _severity_counts(self) -> dict[str, int]:
        counts = self.findings["severity"].value_counts()
        return {s: int(counts.get(s, 0)) for s in reversed(SEVERITIES) if counts.get(s, 0)}

    def __repr__(self) -> str:
        sev = ", ".join(f"{k} {v}" for k, v in self._severity_counts().items())
        where = f" from {', '.join(self.sources)}" if self.sources else ""
        return (f"<Analysis: {len(self._flows)} flows{where}, {len(self.findings)} findings"
                f"{f' ({sev})' if sev else ''}, {len(self.servers)} servers>")

    def _repr_html_(self) -> str:
        esc = html.escape
        flows = self._flows
        parts = ["<div class='portwatch-analysis'>"]
        where = f" from {', '.join(self.sources)}" if self.sources else ""
        span = ""
        first, last = (flows["ts_start"].min(), flows["ts_end"].max()) if len(flows) else (pd.NaT, pd.NaT)
        if first is not pd.NaT and last is not pd.NaT:  # NaT: no time a datetime can hold (frames.MIN_EPOCH)
            span = f", {first:%Y-%m-%d %H:%M:%S} .. {last:%Y-%m-%d %H:%M:%S} UTC"
        parts.append(f"<p><b>portwatch</b>: {esc(str(len(flows)))} flows{esc(where)}{esc(span)}; "
                     f"{esc(str(len(self.findings)))} findings, {esc(str(len(self.servers)))} servers</p>")
        protos = flows["protocol"].value_counts()
        protos = protos[protos > 0]
        parts.append(_html_table(["protocol", "flows"], [(p, n) for p, n in protos.items()]))
        summary = self.summary()
        top = summary.head(TOP_FINDINGS)
        if len(top):
            parts.append(f"<p>Top findings ({esc(str(len(top)))} of {esc(str(len(summary)))})</p>")
            cols = ["severity", "kind", "server", "transport", "protocol", "flows", "message"]
            parts.append(_html_table(cols, top[cols].itertuples(index=False)))
        else:
            parts.append("<p>No findings.</p>")
        for e in self.errors:
            parts.append(f"<p>error: {esc(e)}</p>")
        parts.append("</div>")
        return "\n".join(parts)


def _html_table(columns: list[str], rows: Iterable[Iterable[Any]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---- analyze ------------------------------------------------------------------------------
def _capture_paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return expand(items, strict=False)


def _dirs(value: PathLike | Iterable[PathLike] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def analyze(
    paths: PathLike | Iterable[PathLike],
    *,
    signatures: PathLike | Iterable[PathLike] | None = None,
    services: PathLike | None = None,
    policy: PathLike | None = None,
    progress: bool = True,
    workers: int = 1,
    dask: Any = None,
    bpf: str | None = None,
) -> Analysis:
    """Analyze pcap/pcapng captures (a file, a directory of them, or a list) into an `Analysis`.

    `signatures`: extra signature file(s) or directories, adding to or overriding the built-in set;
    `services`: a services(5) file instead of /etc/services; `policy`: a site policy TOML file;
    `progress`: a status line per capture on stderr (a rich progress bar, on a terminal only, with
    `workers`/`dask`); `workers`: threads in the core, as `portwatch analyze --workers` (each capture
    read once, its flows split by a symmetric hash); `dask`: a Dask scheduler address (or a `distributed.Client`)
    to run the captures on, as `--dask` (see `portwatch.parallel`); `bpf`: a capture filter in pcap-filter(7)
    syntax, as `portwatch analyze -f` (only matching packets are analysed; flow ids still count every packet of
    the file; `portwatch.bpf.BpfError` for an expression that does not compile). A capture that cannot be opened raises
    `portwatch.pipeline.CaptureError`; one that ends early (truncated) warns and is kept
    in `Analysis.errors`.
    """
    config = Config(signature_dirs=_dirs(signatures), services_path=None if services is None else os.fspath(services),
                    policy_path=None if policy is None else os.fspath(policy), bpf=bpf)
    check_signature_dirs(config.signature_dirs)  # a SignatureError naming the file, not a RecursionError
    setup = Setup.load(config)
    rows = frames.FlowRows()
    total = CaptureStats()
    errors: list[str] = []
    names: list[str] = []
    paths_by_name: dict[str, str] = {}

    def sink(rec: FlowRecord) -> None:
        rows.add(rec)

    capture_paths = _capture_paths(paths)
    if dask:
        from .parallel import run as run_parallel
        from .progress import wanted as progress_wanted

        for path in capture_paths:
            open_capture(path)  # raises CaptureError up front, as one process would
        for res in run_parallel(capture_paths, setup, config, sink, workers, dask, progress and progress_wanted(False)):
            names.append(res.name)
            paths_by_name[res.name] = res.path
            total.add(res.stats)
            for e in res.errors:
                errors.append(e)
                warnings.warn(e, stacklevel=2)
        capture_paths = []
    for path in capture_paths:
        capture = open_capture(path)
        names.append(capture.name)
        paths_by_name[capture.name] = path
        # The records no finding can come of come as the core's rows (`FlowRows.add_rows`).
        analyzer = Analyzer(config, on_record=sink, setup=setup, pcap_name=capture.name, workers=workers,
                            on_line=rows.add_rows, line_format="frame")

        def status(capture: Any = capture, analyzer: Analyzer = analyzer) -> None:
            pct = f" {100 * capture.bytes_read / capture.size:.0f}%" if capture.size else ""
            sys.stderr.write(f"\r{capture.name}: {analyzer.stats.packets} packets{pct}")
            sys.stderr.flush()

        analyzer.run_capture(capture, status if progress else None)
        stats = analyzer.close()
        total.add(stats)
        if stats.error:
            errors.append(stats.error)
            warnings.warn(stats.error, stacklevel=2)
        if progress:
            sys.stderr.write(f"\r{capture.name}: {stats.packets} packets, done\n")
    return Analysis(rows.frame(), sources=names, stats=total, errors=errors, paths=paths_by_name)


def flow_packets(flow: pd.Series, capture: PathLike) -> pd.DataFrame:
    """The packets of `flow` (a row of a flows DataFrame) in `capture`, in capture order.

    Columns: ``ts`` (UTC datetime), ``direction`` (category c2s, s2c), ``payload`` (int64, bytes
    of TCP/UDP payload), ``flags`` (string, TCP flags as letters S A P F R U; empty for UDP),
    ``gap`` (float64, seconds since the flow's previous packet). Packets are matched on the 5-tuple
    within the flow's time span; IP fragments are not reassembled here.
    """
    raw = (flow["meta"] or {}).get(frames.TIME_RAW_KEY, {})  # a time out of the datetime range: its seconds
    start = (raw["ts_start"] if "ts_start" in raw else flow["ts_start"].value / 1e9) - 1e-6
    end = (raw["ts_end"] if "ts_end" in raw else flow["ts_end"].value / 1e9) + 1e-6
    # The core reads and decodes the capture; Python gets the flow's packets as rows.
    rows = _core.flow_packets(os.fspath(capture), str(flow["transport"]), str(flow["src_ip"]), int(flow["src_port"]),
                              str(flow["dst_ip"]), int(flow["dst_port"]), start, end)
    ts_values = [r[0] for r in rows]
    return pd.DataFrame({
        "ts": frames.epoch_to_utc(ts_values).array,
        "direction": pd.Categorical([r[1] for r in rows], categories=["c2s", "s2c"]),
        "payload": np.asarray([r[2] for r in rows], dtype="int64"),
        "flags": pd.array([r[3] for r in rows], dtype="string"),
        "gap": np.diff(np.asarray(ts_values, dtype="float64"), prepend=ts_values[0] if rows else 0.0),
    })


# ---- read ---------------------------------------------------------------------------------
SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_MAGIC = b"PAR1"
KNOWN_OUTPUTS = ("flow records (jsonl, csv, eve, parquet, SQLite), --findings-only or --servers tables "
                 "(jsonl, csv) and baselines")


class ReadError(ValueError):
    """`read()` was given something portwatch does not write; str() names the file and what it reads."""


def _not_ours(path: Path, why: str) -> ReadError:
    return ReadError(f"{path}: not an output of portwatch ({why}); read() takes {KNOWN_OUTPUTS}")


def _json_kind(obj: Any) -> str | None:
    """What a JSON object portwatch wrote is: one line of its jsonl/eve outputs, or a baseline."""
    if not isinstance(obj, dict):
        return None
    if "portwatch_baseline" in obj:
        return "baseline"
    if "event_type" in obj:
        return "eve"
    if "src_ip" in obj and "dst_ip" in obj and "ts_start" in obj:
        return "flows"
    if obj.get("type") in ("flow", "classified", "finding", "stats", "start", "stop", "health"):
        return "flows"  # the monitor's lines
    if {"kind", "severity", "message", "flows"} <= obj.keys():
        return "findings"
    if {"dst_ip", "dst_port", "protocols"} <= obj.keys() or {"server_ip", "port", "protocols"} <= obj.keys():
        return "servers"
    return None


def _sniff(path: Path) -> tuple[str, str]:
    """(container, content): container jsonl/json/csv/parquet/sqlite, content flows/eve/findings/servers/baseline."""
    if path.is_dir():
        if not (path / PARQUET_NAME).exists():
            raise _not_ours(path, f"a directory without {PARQUET_NAME}")
        return "parquet", "flows"
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite", "flows"
    if head.startswith(PARQUET_MAGIC):
        return "parquet", "flows"
    if not head.strip():
        return "jsonl", "flows"  # an empty output: no flows
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not a character cut by the 64 KiB boundary
            raise _not_ours(path, "binary data") from None
        text = head[:exc.start].decode("utf-8")
    if text.lstrip().startswith("{"):
        first = text.lstrip().split("\n", 1)[0]
        try:
            kind = _json_kind(json.loads(first))
            container = "jsonl"
        except json.JSONDecodeError:
            try:  # an indented document (a baseline)
                kind = _json_kind(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise _not_ours(path, "invalid JSON") from None
            container = "json"
        if kind is None:
            raise _not_ours(path, "JSON without the fields of any of them")
        return container, kind
    header = set(next(csv.reader([text.split("\n", 1)[0].rstrip("\r")]), []))
    if {"src_ip", "dst_ip", "ts_start", "protocol"} <= header:
        return "csv", "flows"
    if {"severity", "kind", "dst_ip", "message", "flows"} <= header:
        return "csv", "findings"
    if {"dst_ip", "dst_port", "protocols"} <= header:
        return "csv", "servers"
    raise _not_ours(path, "not a portwatch csv: its header names none of its tables")


# Lines parsed by the core in one call: its texts cache spans them (keys, transports...).
JSONL_BATCH = 4096


def _jsonl_objects(path: Path, meta_at: tuple[str, ...] = ("meta",)) -> Iterable[dict[str, Any]]:
    """The objects of a JSON-lines file, the facts at `meta_at` (a record's `meta`) as a
    `_core.Meta`; a line the core leaves to Python (`_core.json_records`) read by `json.loads`."""
    with open(path, encoding="utf-8") as fh:
        n = 0
        while lines := list(islice(fh, JSONL_BATCH)):
            for line, obj in zip(lines, _core.json_records(lines, list(meta_at)), strict=True):
                n += 1
                if obj is not None:
                    yield obj
                    continue
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReadError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
                if not isinstance(obj, dict):
                    raise ReadError(f"{path}:{n}: a JSON {type(obj).__name__}, not an object (a record)")
                yield obj


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """`analyze --format jsonl` lines are flow records; the monitor's lines carry a `type`, and of
    those only `flow` lines (the final record of a flow) are flows."""
    out = []
    for obj in _jsonl_objects(path):
        kind = obj.pop("type", "flow")
        if kind == "flow":
            obj.pop("time", None)
            out.append(obj)
    return out


def _read_eve(path: Path) -> list[dict[str, Any]]:
    from .report.eve import from_event

    return [r for r in (from_event(o) for o in _jsonl_objects(path, ("portwatch", "meta"))) if r is not None]


def _unformula(value: str) -> str:
    """Undo csvout.safe_cell: it put a quote before a cell a spreadsheet would evaluate."""
    if value.startswith("'") and value[1:2] and value[1] in "=+-@\t\r":
        return value[1:]
    return value


class _CsvColumns:
    """A CSV file's columns by name, each cell as `csv.DictReader` gives it: blank lines skipped, a
    repeated name its last column, a short row's missing cells empty; the formula guard undone. A
    column is taken out when asked for, in one pass over the rows, not a dict per row: a flows file
    has 35 columns, and the flat metadata ones are never read."""

    def __init__(self, path: Path) -> None:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            self.rows = [row for row in reader if row]
        self.where = {name: i for i, name in enumerate(header)}
        self.full = min(map(len, self.rows), default=0) >= len(header)

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def get(self, name: str, default: list[Any]) -> list[Any]:
        i = self.where.get(name)
        if i is None:
            return default
        if self.full:
            cells = list(map(itemgetter(i), self.rows))
        else:
            cells = [row[i] if i < len(row) else "" for row in self.rows]
        guarded = list(map(str.startswith, cells, repeat("'")))
        return [_unformula(c) if g else c for c, g in zip(cells, guarded, strict=True)] if any(guarded) else cells


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV table (`--servers`, `--findings-only`) as dicts, from `_CsvColumns`."""
    cells = _CsvColumns(path)
    columns = {name: cells.get(name, []) for name in cells.where}
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _read_csv(path: Path) -> dict[str, list[Any]]:
    """The flow columns of `analyze --format csv` (`frames.columns_frame`'s input)."""
    cells = _CsvColumns(path)
    n = len(cells.rows)

    def column(name: str) -> list[str]:  # a record has it: a file with rows and without it is damaged
        if name not in cells and n:
            raise KeyError(name)
        return cells.get(name, [])

    def optional(name: str) -> list[str | None]:
        return cells.get(name, [None] * n)

    out: dict[str, list[Any]] = {name: [v or None for v in optional(name)]
                                 for name in ("community_id", "pcap", "state", "history")}
    out["flow_id"] = [int(v) if v and v.isdigit() else v or None for v in optional("flow_id")]
    for name in ("ts_start", "ts_end", "confidence"):
        out[name] = [float(v) for v in column(name)]
    out["duration"] = [float(v) if v else None for v in optional("duration")]
    for name in ("transport", "src_ip", "dst_ip", "orientation", "protocol"):
        out[name] = column(name)
    for name in ("src_port", "dst_port", *frames.COUNTER_COLUMNS):
        out[name] = [int(v) for v in column(name)]
    out["assigned"] = [split_list(v) for v in column("assigned")]
    out["meta"] = [meta_of_json(v) for v in optional("meta")]
    out["findings"] = [json.loads(v or "[]") for v in optional("findings")]
    return out


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    return read_parquet_records(path / PARQUET_NAME if path.is_dir() else path)


def _read_sqlite(path: Path) -> list[dict[str, Any]]:
    """The `flows` table of a database `report/sqlite.py` wrote (`analyze --format sqlite`, the
    monitor's `--db`), opened read-only. A version 1 database (before community_id, duration,
    state and history) reads with those empty.

    The `findings` table there also holds findings reported live, before their flow ended; read it
    with `pandas.read_sql` when those matter (the notebook monitor-db.ipynb shows how).
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        db.row_factory = sqlite3.Row
        try:
            have = {r[1] for r in db.execute("PRAGMA table_info(flows)")}
        except sqlite3.DatabaseError as exc:
            raise ReadError(f"{path}: {exc}") from None
        if not have:
            raise _not_ours(path, "a SQLite database without a flows table")
        cols = [c for c in frames.FLOW_COLUMNS if c in have]
        rows = db.execute(f"SELECT {', '.join(cols)} FROM flows ORDER BY id").fetchall()
    finally:
        db.close()
    out = []
    for row in rows:
        r = dict(row)
        r["assigned"] = json.loads(r["assigned"] or "[]")
        r["meta"] = meta_of_json(r["meta"])
        r["findings"] = json.loads(r["findings"] or "[]")
        out.append(r)
    return out


def _table_rows(path: Path, container: str) -> list[dict[str, Any]]:
    if container == "jsonl":
        return list(_jsonl_objects(path))
    if container == "json":
        servers = json.loads(path.read_text(encoding="utf-8")).get("servers") or []
        if not isinstance(servers, list) or not all(isinstance(s, dict) for s in servers):
            raise ReadError(f"{path}: servers: must be a list of objects")
        return servers
    rows: list[dict[str, Any]] = []
    for r in _csv_rows(path):
        row: dict[str, Any] = dict(r)
        for key in ("protocols", "assigned"):
            if key in row:
                row[key] = split_list(row[key])
        rows.append(row)
    return rows


def _servers_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:  # baselines written before the columns were renamed
        if "dst_ip" not in r and "server_ip" in r:
            r["dst_ip"], r["dst_port"] = r.pop("server_ip"), r.pop("port")
    return rows


def _why(exc: Exception) -> str:
    """An exception as the reason in a one-line error: it may quote the file's own bytes (sqlite3
    quotes a cell it cannot decode), so escaped and cut."""
    return clean_text(f"{type(exc).__name__}: {exc}", 200)


def read(path: PathLike) -> Analysis | pd.DataFrame:
    """Load what portwatch wrote. The format is recognised from the file's content, not its name.

    Flow records (``analyze --format jsonl|csv|eve|parquet|sqlite``, a `to_parquet` directory, the
    monitor's JSONL or its SQLite database) give an `Analysis` whose DataFrames equal those `analyze`
    builds: same columns, same dtypes. The tables give a DataFrame: ``--findings-only`` (jsonl or
    csv) the columns of `Analysis.summary()`; ``--servers`` (jsonl or csv) and a baseline's servers
    the columns of `Analysis.servers` (the derived ones empty where the file does not hold them).
    Anything else raises `ReadError` (a ValueError) naming the file.

    From the monitor, a flow longer than its active timeout is several rows
    (``meta["end_reason"] == "active-timeout"`` on all but the last), as the monitor reported it.
    """
    p = Path(path)
    try:
        container, content = _sniff(p)
    except RecursionError:  # json recurses per nesting level: a hostile file's thousands of them
        raise ReadError(f"{p}: JSON nested too deeply to read") from None
    try:
        if content == "findings":
            return frames.findings_table(_table_rows(p, container))
        if content in ("servers", "baseline"):
            rows = _table_rows(p, "json" if content == "baseline" else container)
            return frames.servers_table(_servers_rows(rows))
        if container == "csv":
            return Analysis(frames.columns_frame(_read_csv(p)), sources=[p.name])
        readers = {"jsonl": _read_jsonl, "parquet": _read_parquet, "sqlite": _read_sqlite}
        records = _read_eve(p) if content == "eve" else readers[container](p)
        return Analysis(frames.flows_frame(records), sources=[p.name])
    except ReadError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, NotImplementedError, csv.Error) as exc:
        # OverflowError: a number past a 64-bit column's range; NotImplementedError: pyarrow's for
        # a Parquet column of a type with no cast to the schema's.
        raise ReadError(f"{p}: a damaged {content} file ({_why(exc)})") from None
    except (sqlite3.Error, OSError) as exc:
        # pyarrow's OSError for a damaged Parquet file (a page that does not decompress), SQLite's
        # for a damaged database, a cell it cannot decode, or a lock.
        raise ReadError(f"{p}: cannot read this {content} file ({_why(exc)})") from None
    except RecursionError:
        raise ReadError(f"{p}: a damaged {content} file (JSON nested too deeply)") from None
