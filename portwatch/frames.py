"""Flow records (``FlowRecord.as_dict()`` shape) to pandas DataFrames with deliberate dtypes.

Every reader (jsonl, csv, parquet, SQLite) and `analyze` ends in `flows_frame`, so a DataFrame
built from any source has the same columns and dtypes, and `findings_frame`, `servers_frame` and
`summary_frame` derive from it.

Flows (`flows_frame`), one row per flow, `report.schema.FLOW_COLUMNS` in their order (docs/schema.md):

=============================  =========================================================================
column                         dtype
=============================  =========================================================================
flow_id                        ``string`` (a number from analyze, ``run-id`` prefixed from the monitor)
community_id                   ``string``, Community ID v1
pcap                           ``string`` (``<NA>`` for live traffic)
ts_start, ts_end               ``datetime64[ns, UTC]``, rounded to the microsecond (pcap resolution);
                               ``NaT`` for a time outside 1677..2262, whose epoch seconds (float) are
                               then in ``meta['time_out_of_range']`` (``{'ts_start': s, 'ts_end': s}``)
duration                       ``float64``, seconds
transport                      ``category`` [tcp, udp]
src_ip, dst_ip                 ``string``
src_port, dst_port             ``int32``
orientation                    ``category`` [handshake, inferred]
protocol                       ``category``, the protocols present, sorted
confidence                     ``float64``
assigned                       ``object``: list of service names (possibly empty)
packets_c2s .. bytes_s2c       ``int64`` (bytes: transport payload, as Zeek's orig_bytes)
state, history                 ``string``, Zeek's conn_state and history
meta                           ``object``: dict of metadata (sni, ja3, ssh_server, client_head ...)
findings                       ``object``: list of ``{kind, severity, message}`` dicts
=============================  =========================================================================

Text is sanitised again on the way in (`portwatch.sanitize.clean_text`, without truncation), so a
file that did not come from portwatch cannot smuggle control characters or ANSI escapes into a
notebook; text that portwatch wrote is unchanged by it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from . import _core
from .model import SEVERITIES, SEVERITY_RANK, Finding, FlowRecord
from .report.schema import (
    COUNTER_COLUMNS,
    FLOW_COLUMNS,
    PORT_COLUMNS,
    SERVER_COLUMNS,
    SERVER_FRAME_EXTRA,
    TIME_COLUMNS,
    server_label,
)
from .report.schema import (
    FINDING_COLUMNS as SUMMARY_COLUMNS,
)
from .report.servers import ServerInventory
from .report.summary import Summary
from .sanitize import MAX_TEXT, clean_text

STRING_COLUMNS = ("flow_id", "community_id", "pcap", "src_ip", "dst_ip", "state", "history")
TRANSPORTS = ("tcp", "udp")
ORIENTATIONS = ("handshake", "inferred")
TIME_DTYPE = "datetime64[ns, UTC]"
SEVERITY_DTYPE = pd.CategoricalDtype(SEVERITIES, ordered=True)
FINDING_COLUMNS: tuple[str, ...] = ("flow", "kind", "severity", "message")


def safe_text(value: str) -> str:
    """`clean_text` without its length limit: idempotent, so sanitised text passes unchanged."""
    # Fast path: a printable string holds none of the characters clean_text escapes (controls,
    # format and separator characters are all non-printable); this keeps a frame of 100k flows cheap.
    if value.isprintable():
        return value
    return clean_text(value, max(MAX_TEXT, len(value)))


def _safe_value(value: Any) -> Any:
    """`value` with every key and text through `safe_text`, dicts and lists rebuilt (`_walk_safe`)."""
    if type(value) is dict:
        # The core's walk: a fifth of the time. It takes JSON's values only (text keys, 64-bit
        # integers, finite floats, valid text, 64 levels); anything else is walked in Python.
        with suppress(ValueError, TypeError):
            return _core.Meta(value).safe_dict()
    return _walk_safe(value)


def _walk_safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Mapping):
        return {safe_text(str(k)): _walk_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk_safe(v) for v in value]
    return value


def _safe_meta(value: Any) -> dict[str, Any]:
    """A record's `meta` as a dict of its own, every text through `safe_text` (a core `Meta`
    converted so by the core itself, without a dict between)."""
    if type(value) is _core.Meta:
        converted = value.safe_dict()
        if converted is not None:
            return converted
    return _safe_value(dict(value or {}))


def _texts(values: Iterable[Any], empty: str | None = None) -> list[str | None]:
    """A column's values as `safe_text(str(v))`, None and NA as None, "" as `empty`. A column of
    printable texts (addresses, ids, states, nearly always) or of integers is checked in one pass
    over all of it, not a call per value."""
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= {str} and "".join(values).isprintable():
        return values if empty == "" else [v or empty for v in values]
    if kinds <= {int}:
        return list(map(str, values))
    return [None if v is None or v is pd.NA else empty if v == "" else safe_text(str(v)) for v in values]


def _categorical(values: Iterable[Any], base: tuple[str, ...] = (), ordered: bool = False) -> pd.Categorical:
    """Categories are `base` (in its order) then any other value seen, sorted: stable for equal data."""
    values = _texts(values, empty="")
    extra = sorted({v for v in values if v is not None} - set(base))
    return pd.Categorical(values, categories=[*base, *extra], ordered=ordered)


# Epoch seconds a datetime64[ns] can hold (1677-09-21 .. 2262-04-11). A capture may claim any time
# (a pcapng timestamp is 64 bits: 2^64-1 microseconds is the year 586,524): outside these bounds the
# datetime is NaT and the seconds are kept in the row's meta (`TIME_RAW_KEY`), never an exception.
MIN_EPOCH = pd.Timestamp.min.value / 1e9 + 1.0
MAX_EPOCH = pd.Timestamp.max.value / 1e9 - 1.0
TIME_RAW_KEY = "time_out_of_range"


def _seconds(values: Iterable[Any]) -> np.ndarray:
    """Epoch seconds as float64; None, NaN and what is not a number become NaN."""
    out = []
    for v in values:
        try:
            out.append(float(v) if v is not None and v is not pd.NA else np.nan)
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.asarray(out, dtype="float64")


def in_time_range(seconds: np.ndarray) -> np.ndarray:
    """True where epoch `seconds` fit a datetime64[ns] (finite and within MIN_EPOCH..MAX_EPOCH)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(seconds) & (seconds >= MIN_EPOCH) & (seconds <= MAX_EPOCH)


def epoch_to_utc(values: Iterable[Any]) -> pd.Series:
    """Epoch seconds (float) to UTC datetimes, rounded to the microsecond so every format agrees;
    NaT where the value is missing or out of the datetime range (see MIN_EPOCH), never an error."""
    seconds = np.asarray(values, dtype="float64") if isinstance(values, np.ndarray) else _seconds(values)
    ok = in_time_range(seconds)
    micros = np.full(len(seconds), np.datetime64("NaT"), dtype="datetime64[us]")
    micros[ok] = np.rint(seconds[ok] * 1e6).astype("int64").astype("datetime64[us]")
    return pd.Series(micros.astype("datetime64[ns]")).dt.tz_localize("UTC").astype(TIME_DTYPE)


def _times(values: list[Any]) -> pd.Series:
    if values and all(isinstance(v, datetime) for v in values):
        try:
            index = pd.DatetimeIndex(values)
            index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
            return pd.Series(index).astype(TIME_DTYPE).dt.round("us")
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            return epoch_to_utc(_datetime_seconds(values))
    return epoch_to_utc(values)


def _datetime_seconds(values: list[Any]) -> list[float]:
    out = []
    for v in values:
        if v is pd.NaT:
            out.append(np.nan)
            continue
        try:
            out.append((v if v.tzinfo else v.replace(tzinfo=UTC)).timestamp())
        except (OverflowError, ValueError, OSError):
            out.append(np.nan)
    return out


def _time_raw(values: list[Any]) -> list[float | None]:
    """Each value as epoch seconds when it is a number a datetime64[ns] cannot hold, else None."""
    if not values or isinstance(values[0], datetime):
        return [None] * len(values)
    seconds = _seconds(values)
    bad = ~in_time_range(seconds)
    return [float(seconds[i]) if bad[i] and values[i] is not None and np.isfinite(seconds[i]) else None
            for i in range(len(values))]


def _assigned(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [safe_text(v) for v in value.split()]
    return [safe_text(str(v)) for v in value]


def _findings(value: Any) -> list[dict[str, str]]:
    out = []
    for f in value or ():
        out.append({k: safe_text(str(f[k])) for k in ("kind", "severity", "message")})
    return out


def flows_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per flow record (dicts as `FlowRecord.as_dict()` returns them); dtypes in the module doc.

    ``ts_start``/``ts_end`` may be epoch seconds or datetimes (naive ones are taken as UTC); ``assigned`` a list or the
    space-joined text the csv sink writes.
    """
    rows = list(records)
    return columns_frame({name: [r.get(name) for r in rows] for name in FLOW_COLUMNS})


class FlowRows:
    """The records of a run gathered for `flows_frame`, a tuple each in `FLOW_COLUMNS`' order (what
    `FlowRecord.as_dict` gives, `meta` still the core's map): a dict per record, kept until the
    frame is made, took more time to build and to read back, and the collector's passes over them
    grew with the run."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, rec: FlowRecord) -> None:
        findings = rec.findings
        self.rows.append((
            rec.flow_id, rec.community_id, rec.pcap, rec.ts_start, rec.ts_end, rec.duration, rec.transport,
            rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port, rec.orientation, rec.protocol,
            round(rec.confidence, 3), tuple(rec.assigned), rec.packets_c2s, rec.packets_s2c, rec.bytes_c2s,
            rec.bytes_s2c, rec.state, rec.history, rec.meta, [f.as_dict() for f in findings] if findings else (),
        ))

    def add_rows(self, rows: list[tuple[Any, ...]], records: int) -> None:
        """Rows the core made of records no finding came of (`_core.QuietLines` in the "frame"
        form: `add`'s tuples), in their place among the records."""
        self.rows.extend(rows)

    def frame(self) -> pd.DataFrame:
        """`flows_frame` of the records, ordered by start time, then capture name (a stable sort)."""
        start, pcap = FLOW_COLUMNS.index("ts_start"), FLOW_COLUMNS.index("pcap")
        rows = sorted(self.rows, key=lambda r: (r[start], r[pcap] or ""))
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in FLOW_COLUMNS]
        return columns_frame({name: list(values) for name, values in zip(FLOW_COLUMNS, columns, strict=True)})


def columns_frame(col: dict[str, list[Any]]) -> pd.DataFrame:
    """`flows_frame` of records given as columns: `col[name]` for each of `FLOW_COLUMNS`, the
    values `flows_frame` takes, in the same order in every column."""
    data: dict[str, Any] = {}
    for name in FLOW_COLUMNS:
        values = col[name]
        if name in STRING_COLUMNS:
            data[name] = pd.array(_texts(values), dtype="string")
        elif name in TIME_COLUMNS:
            data[name] = _times(values)
        elif name == "transport":
            data[name] = _categorical(values, TRANSPORTS)
        elif name == "orientation":
            data[name] = _categorical(values, ORIENTATIONS)
        elif name == "protocol":
            data[name] = _categorical(values)
        elif name in PORT_COLUMNS:
            data[name] = np.asarray(values, dtype="int64").astype("int32")
        elif name in COUNTER_COLUMNS:
            data[name] = np.asarray(values, dtype="int64")
        elif name in ("confidence", "duration"):
            data[name] = np.asarray([np.nan if v is None else v for v in values], dtype="float64")
        elif name == "assigned":
            data[name] = _object([_assigned(v) for v in values])
        elif name == "meta":
            metas = [_safe_meta(v) for v in values]
            raw = {t: _time_raw(col[t]) for t in TIME_COLUMNS}
            for i, m in enumerate(metas):
                kept = {t: raw[t][i] for t in TIME_COLUMNS if raw[t][i] is not None}
                if kept:
                    m[TIME_RAW_KEY] = kept
            data[name] = _object(metas)
        else:  # findings
            data[name] = _object([_findings(v) for v in values])
    frame = pd.DataFrame({k: (v.array if isinstance(v, pd.Series) else v) for k, v in data.items()})
    return frame


def _object(values: list[Any]) -> np.ndarray:
    # np.array would turn a list of equal-length lists into a 2-D array; fill an object array instead.
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def findings_frame(flows: pd.DataFrame) -> pd.DataFrame:
    """One row per finding: ``flow`` (int64, the row label in `flows`), ``kind`` (category, the kinds
    present, sorted), ``severity`` (ordered category info < low < medium < high), ``message``
    (string), then every flow column except ``findings``, with the flows' dtypes."""
    index: list[int] = []
    kinds: list[str] = []
    severities: list[str] = []
    messages: list[str] = []
    for label, fl in zip(flows.index, flows["findings"], strict=True):
        for f in fl:
            index.append(label)
            kinds.append(f["kind"])
            severities.append(f["severity"])
            messages.append(f["message"])
    rest = flows.loc[index].drop(columns=["findings"]).reset_index(drop=True)
    head = pd.DataFrame({
        "flow": np.asarray(index, dtype="int64"),
        "kind": _categorical(kinds),
        "severity": pd.Categorical(severities, dtype=SEVERITY_DTYPE),
        "message": pd.array(messages, dtype="string"),
    })
    return pd.concat([head, rest], axis=1)


# Metadata that says what a server is, best first: shown as `identity` in the servers table.
IDENTITY_KEYS = ("ssh_server", "banner", "sni", "http_server", "http_host", "dns_query")


def _records(flows: pd.DataFrame) -> Iterator[FlowRecord]:
    """The frame's records one at a time, for a reader that keeps none of them: made and dropped
    in turn, they never add up to a heap the cyclic collector walks (a list of them doubled the
    time of `Analysis.servers`)."""
    for d in iter_frame_records(flows, copy=False):
        d["findings"] = [Finding(f["kind"], f["severity"], f["message"]) for f in d["findings"]]
        yield FlowRecord(**d)


def servers_frame(flows: pd.DataFrame, per_capture: bool = False) -> pd.DataFrame:
    """The servers inventory of ``analyze --servers`` (`portwatch.report.servers`) as a DataFrame: one
    row per server endpoint that took part in a flow (a SYN answered by RST makes no server); with
    `per_capture`, one per capture and endpoint, with a ``pcap`` column first.

    Columns: `schema.SERVER_COLUMNS` as every servers output names them: ``dst_ip`` (string),
    ``dst_port`` (int32), ``transport`` (category), ``protocols`` (object: list of every detected
    protocol, most frequent first), ``assigned`` (object: list of service names), ``clients`` (int64;
    ``clients_capped``, bool, says the count stopped at the inventory's bound), ``flows``,
    ``bytes_c2s``, ``bytes_s2c`` (int64), ``first_seen``/``last_seen`` (UTC datetimes); then
    ``server`` (string, ``ip:port``), ``protocol`` (category, the most frequent detected protocol),
    and from the flows' findings and metadata: ``max_severity`` (ordered category, ``<NA>`` without
    findings), ``kinds`` (string, finding kinds joined by ``,``), ``identity`` (string: the first of
    ssh_server, banner, sni, http_server, http_host, dns_query). Ordered as the inventory orders
    them: port, transport, address.
    """
    groups = flows.groupby("pcap", dropna=False, sort=True) if per_capture and len(flows) else [(None, flows)]
    rows = []
    for pcap, part in groups:
        inventory = ServerInventory()
        extras: dict[tuple[str, int, str], dict[str, Any]] = {}
        for rec in _records(part):
            inventory.add(rec)
            x = extras.setdefault((rec.dst_ip, rec.dst_port, rec.transport), {"kinds": set(), "sev": None, "id": None})
            for f in rec.findings:
                x["kinds"].add(f.kind)
                if x["sev"] is None or SEVERITY_RANK.get(f.severity, -1) > SEVERITY_RANK[x["sev"]]:
                    x["sev"] = f.severity if f.severity in SEVERITY_RANK else x["sev"]
            if x["id"] is None:
                x["id"] = next((rec.meta[k] for k in IDENTITY_KEYS if rec.meta.get(k)), None)
        for r in inventory.rows():
            x = extras[(r["dst_ip"], r["dst_port"], r["transport"])]
            rows.append({**r, "pcap": None if pcap is None or pcap is pd.NA or pcap != pcap else pcap,
                         "server": server_label(r["dst_ip"], r["dst_port"]), "kinds": ",".join(sorted(x["kinds"])),
                         "max_severity": x["sev"], "identity": x["id"]})
    out = servers_table(rows)
    out.insert(0, "pcap", pd.array([r["pcap"] for r in rows], dtype="string"))
    return out if per_capture else out.drop(columns=["pcap"])


def servers_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Servers rows (`schema.SERVER_COLUMNS`, as `--servers` jsonl/csv and baselines hold them) to the
    DataFrame `servers_frame` returns; the derived columns are computed when the rows lack them."""

    def col(name: str) -> list[Any]:
        return [r.get(name) for r in rows]

    def num(name: str) -> list[Any]:  # counters a hand-written baseline may leave out
        return [r.get(name) or 0 for r in rows]

    protocols = [_assigned(r.get("protocols")) for r in rows]
    return pd.DataFrame({
        "dst_ip": pd.array(col("dst_ip"), dtype="string"),
        "dst_port": np.asarray(col("dst_port"), dtype="int64").astype("int32"),
        "transport": _categorical(col("transport"), TRANSPORTS),
        "protocols": _object(protocols),
        "assigned": _object([_assigned(v) for v in col("assigned")]),
        "clients": np.asarray(num("clients"), dtype="int64"),
        "clients_capped": np.asarray([bool(v) and v not in ("False", "false", "0") for v in col("clients_capped")],
                                     dtype="bool"),
        "flows": np.asarray(num("flows"), dtype="int64"),
        "bytes_c2s": np.asarray(num("bytes_c2s"), dtype="int64"),
        "bytes_s2c": np.asarray(num("bytes_s2c"), dtype="int64"),
        "first_seen": _times(col("first_seen")).array,
        "last_seen": _times(col("last_seen")).array,
        "server": pd.array([r.get("server") or server_label(str(r["dst_ip"]), int(r["dst_port"])) for r in rows],
                           dtype="string"),
        "protocol": _categorical([p[0] if p else "unknown" for p in protocols]),
        "max_severity": pd.Categorical(col("max_severity"), dtype=SEVERITY_DTYPE),
        "kinds": pd.array(col("kinds"), dtype="string"),
        "identity": pd.array(col("identity"), dtype="string"),
    })[[*SERVER_COLUMNS, *SERVER_FRAME_EXTRA]]


def summary_frame(flows: pd.DataFrame) -> pd.DataFrame:
    """Findings per (server, transport, kind, protocol), worst first: the console report's and
    ``--findings-only``'s rows, from the same aggregation (`report.summary.Summary`).

    Columns (`schema.FINDING_COLUMNS`): ``severity`` (ordered category, the worst of the group),
    ``kind`` (category), ``dst_ip`` (string), ``dst_port`` (int32), ``transport`` (category),
    ``protocol`` (category), ``flows`` and ``clients`` (int64), ``clients_capped`` (bool),
    ``first_seen``/``last_seen`` (UTC datetimes), ``message`` (string, of the worst finding), then
    ``server`` (string ``ip:port``).
    """
    summary = Summary()
    for rec in _records(flows):
        summary.add(rec)
    note = summary.unlisted_note()
    if note is not None:
        warnings.warn(note, stacklevel=2)
    return findings_table([g.as_row() for g in summary.sorted_groups()])


def findings_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Findings rows (`schema.FINDING_COLUMNS`, as `--findings-only` jsonl/csv hold them) to the
    DataFrame `summary_frame` returns, in the order given."""

    def col(name: str) -> list[Any]:
        return [r.get(name) for r in rows]

    out = pd.DataFrame({
        "severity": pd.Categorical(col("severity"), dtype=SEVERITY_DTYPE),
        "kind": _categorical(col("kind")),
        "dst_ip": pd.array(col("dst_ip"), dtype="string"),
        "dst_port": np.asarray(col("dst_port"), dtype="int64").astype("int32"),
        "transport": _categorical(col("transport"), TRANSPORTS),
        "protocol": _categorical(col("protocol")),
        "flows": np.asarray(col("flows"), dtype="int64"),
        "clients": np.asarray(col("clients"), dtype="int64"),
        "clients_capped": np.asarray([bool(v) and v not in ("False", "false", "0") for v in col("clients_capped")],
                                     dtype="bool"),
        "first_seen": _times(col("first_seen")).array,
        "last_seen": _times(col("last_seen")).array,
        "message": pd.array([None if v is None else safe_text(str(v)) for v in col("message")], dtype="string"),
        "server": pd.array([server_label(str(r["dst_ip"]), int(r["dst_port"])) for r in rows], dtype="string"),
    })
    return out[[*SUMMARY_COLUMNS, "server"]]


def _column(flows: pd.DataFrame, name: str) -> list[Any]:
    """A column as plain Python values (None for missing), converted in one vectorised step."""
    col = flows[name]
    if name in TIME_COLUMNS:
        ns = col.to_numpy("datetime64[ns]")
        seconds = ns.astype("int64") / 1e9
        seconds[np.isnat(ns)] = np.nan
        raw = [(m or {}).get(TIME_RAW_KEY, {}).get(name) for m in flows["meta"]] if np.isnat(ns).any() else ()
        for i, r in enumerate(raw):
            if r is not None:
                seconds[i] = r  # a time out of the datetime range: the seconds the capture gave
        return seconds.tolist()
    if name in PORT_COLUMNS or name in COUNTER_COLUMNS or name in ("confidence", "duration"):
        return col.to_numpy().tolist()
    if name in ("assigned", "meta", "findings"):
        return col.tolist()
    values = col.astype(object).tolist()
    return [None if v is None or v is pd.NA or v != v else str(v) for v in values]


def frame_records(flows: pd.DataFrame, copy: bool = True) -> list[dict[str, Any]]:
    """Back from a flows DataFrame to record dicts (epoch-second floats), for the sinks. With
    `copy=False`, `assigned`, `meta` and `findings` are the frame's own objects (for a reader that
    changes nothing: copying every meta was half the time of a summary)."""
    return list(iter_frame_records(flows, copy))


def iter_frame_records(flows: pd.DataFrame, copy: bool = True) -> Iterator[dict[str, Any]]:
    """`frame_records`, one record at a time."""
    cols = {name: _column(flows, name) for name in FLOW_COLUMNS}
    for values in zip(*cols.values(), strict=True):
        d = dict(zip(FLOW_COLUMNS, values, strict=True))
        if d["pcap"] is None:
            del d["pcap"]
        if copy:
            d["assigned"] = list(d["assigned"])
            d["meta"] = dict(d["meta"])
            d["findings"] = [dict(f) for f in d["findings"]]
        yield d
