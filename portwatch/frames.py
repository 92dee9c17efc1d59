"""Flow records (``FlowRecord.as_dict()`` shape) to pandas DataFrames with deliberate dtypes.

Every reader (jsonl, csv, parquet, SQLite) and `analyze` ends in `flows_frame`, so a DataFrame
built from any source has the same columns and dtypes, and `findings_frame`, `servers_frame` and
`summary_frame` derive from it.

Flows (`flows_frame`), one row per flow, the columns of DESIGN.md's output schema in its order:

=============================  =========================================================================
column                         dtype
=============================  =========================================================================
pcap                           ``string`` (``<NA>`` for live traffic)
ts_start, ts_end               ``datetime64[ns, UTC]``, rounded to the microsecond (pcap resolution);
                               ``NaT`` for a time outside 1677..2262, whose epoch seconds (float) are
                               then in ``meta['time_out_of_range']`` (``{'ts_start': s, 'ts_end': s}``)
transport                      ``category`` [tcp, udp]
src_ip, dst_ip                 ``string``
src_port, dst_port             ``int32``
orientation                    ``category`` [handshake, inferred]
protocol                       ``category``, the protocols present, sorted
confidence                     ``float64``
assigned                       ``object``: list of service names (possibly empty)
packets_c2s .. bytes_s2c       ``int64``
meta                           ``object``: dict of metadata (sni, ja3, ssh_server, client_head ...)
findings                       ``object``: list of ``{kind, severity, message}`` dicts
=============================  =========================================================================

Text is sanitised again on the way in (`portwatch.sanitize.clean_text`, without truncation), so a
file that did not come from portwatch cannot smuggle control characters or ANSI escapes into a
notebook; text that portwatch wrote is unchanged by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from .model import SEVERITIES, SEVERITY_RANK, Finding, FlowRecord
from .report.servers import ServerInventory
from .sanitize import MAX_TEXT, clean_text

FLOW_COLUMNS: tuple[str, ...] = (
    "pcap", "ts_start", "ts_end", "transport", "src_ip", "src_port", "dst_ip", "dst_port", "orientation",
    "protocol", "confidence", "assigned", "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "meta",
    "findings",
)
TIME_COLUMNS = ("ts_start", "ts_end")
PORT_COLUMNS = ("src_port", "dst_port")
COUNTER_COLUMNS = ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c")
STRING_COLUMNS = ("pcap", "src_ip", "dst_ip")
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
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Mapping):
        return {safe_text(str(k)): _safe_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe_value(v) for v in value]
    return value


def _categorical(values: Iterable[Any], base: tuple[str, ...] = (), ordered: bool = False) -> pd.Categorical:
    """Categories are `base` (in its order) then any other value seen, sorted: stable for equal data."""
    values = [None if v is None or v is pd.NA else safe_text(str(v)) for v in values]
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
    col: dict[str, list[Any]] = {name: [r.get(name) for r in rows] for name in FLOW_COLUMNS}
    data: dict[str, Any] = {}
    for name in FLOW_COLUMNS:
        values = col[name]
        if name in STRING_COLUMNS:
            data[name] = pd.array([None if v is None or v is pd.NA or v == "" else safe_text(str(v)) for v in values],
                                  dtype="string")
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
        elif name == "confidence":
            data[name] = np.asarray(values, dtype="float64")
        elif name == "assigned":
            data[name] = _object([_assigned(v) for v in values])
        elif name == "meta":
            metas = [_safe_value(dict(v or {})) for v in values]
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


def server_label(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _max_severity(findings: Iterable[list[dict[str, str]]]) -> str | None:
    best: str | None = None
    for fl in findings:
        for f in fl:
            if best is None or SEVERITY_RANK.get(f["severity"], -1) > SEVERITY_RANK[best]:
                best = f["severity"] if f["severity"] in SEVERITY_RANK else best
    return best


# Metadata that says what a server is, best first: shown as `identity` in the servers table.
IDENTITY_KEYS = ("ssh_server", "banner", "sni", "http_server", "http_host", "dns_query")


def _records(flows: pd.DataFrame) -> list[FlowRecord]:
    out = []
    for d in frame_records(flows):
        d["findings"] = [Finding(f["kind"], f["severity"], f["message"]) for f in d["findings"]]
        out.append(FlowRecord(**d))
    return out


def servers_frame(flows: pd.DataFrame, per_capture: bool = False) -> pd.DataFrame:
    """The servers inventory of ``analyze --servers`` (`portwatch.report.servers`) as a DataFrame: one
    row per server endpoint that took part in a flow (a SYN answered by RST makes no server); with
    `per_capture`, one per capture and endpoint, with a ``pcap`` column first.

    Columns: ``server`` (string, ``ip:port``), ``server_ip`` (string), ``port`` (int32), ``transport``
    (category), ``protocol`` (category, the most frequent detected protocol), ``protocols`` (string,
    every detected protocol, most frequent first, joined by ``,``), ``assigned`` (string,
    space-joined service names), ``clients`` (int64; ``clients_capped``, bool, says the count stopped
    at the inventory's bound), ``flows``, ``bytes_c2s``, ``bytes_s2c`` (int64),
    ``first_seen``/``last_seen`` (UTC datetimes), and from the flows' findings and metadata:
    ``max_severity`` (ordered category, ``<NA>`` without findings), ``kinds`` (string, finding kinds
    joined by ``,``), ``identity`` (string: the first of ssh_server, banner, sni, http_server,
    http_host, dns_query). Ordered as the inventory orders them: port, transport, address.
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
            x = extras[(r["server_ip"], r["port"], r["transport"])]
            rows.append({**r, "pcap": None if pcap is None or pcap is pd.NA or pcap != pcap else pcap,
                         "server": server_label(r["server_ip"], r["port"]), "kinds": ",".join(sorted(x["kinds"])),
                         "max_severity": x["sev"], "identity": x["id"]})

    def col(name: str) -> list[Any]:
        return [r[name] for r in rows]

    out = pd.DataFrame({
        "pcap": pd.array(col("pcap"), dtype="string"),
        "server": pd.array(col("server"), dtype="string"),
        "server_ip": pd.array(col("server_ip"), dtype="string"),
        "port": np.asarray(col("port"), dtype="int32"),
        "transport": _categorical(col("transport"), TRANSPORTS),
        "protocol": _categorical([r["protocols"][0] for r in rows]),
        "protocols": pd.array([",".join(r["protocols"]) for r in rows], dtype="string"),
        "assigned": pd.array([" ".join(r["assigned"]) for r in rows], dtype="string"),
        "clients": np.asarray(col("clients"), dtype="int64"),
        "clients_capped": np.asarray(col("clients_capped"), dtype="bool"),
        "flows": np.asarray(col("flows"), dtype="int64"),
        "bytes_c2s": np.asarray(col("bytes_c2s"), dtype="int64"),
        "bytes_s2c": np.asarray(col("bytes_s2c"), dtype="int64"),
        "first_seen": epoch_to_utc(col("first_seen")).array,
        "last_seen": epoch_to_utc(col("last_seen")).array,
        "max_severity": pd.Categorical(col("max_severity"), dtype=SEVERITY_DTYPE),
        "kinds": pd.array(col("kinds"), dtype="string"),
        "identity": pd.array(col("identity"), dtype="string"),
    })
    return out if per_capture else out.drop(columns=["pcap"])


def _worst_first(frame: pd.DataFrame, severity: str, count: str) -> pd.DataFrame:
    rank = frame[severity].cat.codes  # -1 for <NA>: sorts after every severity
    order = np.lexsort((-frame[count].to_numpy(), -rank.to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def summary_frame(flows: pd.DataFrame) -> pd.DataFrame:
    """Findings deduplicated per (server, transport, kind), as the console report shows them.

    Columns: ``severity`` (ordered category, the worst of the group), ``kind`` (category),
    ``server`` (string ``ip:port``), ``transport`` (category), ``protocol`` (category), ``flows``
    and ``clients`` (int64), ``first_seen``/``last_seen`` (UTC datetimes), ``message`` (string, of
    the worst finding). Sorted worst first, then by number of flows.
    """
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in flows.itertuples(index=False):
        server = server_label(row.dst_ip, int(row.dst_port))
        for f in row.findings:
            key = (server, str(row.transport), f["kind"])
            g = groups.get(key)
            if g is None:
                g = groups[key] = {
                    "severity": f["severity"], "kind": f["kind"], "server": server, "transport": str(row.transport),
                    "protocol": str(row.protocol), "flows": 0, "clients": set(), "first_seen": row.ts_start,
                    "last_seen": row.ts_end, "message": f["message"],
                }
            g["flows"] += 1
            g["clients"].add(row.src_ip)
            g["first_seen"] = min(g["first_seen"], row.ts_start)
            g["last_seen"] = max(g["last_seen"], row.ts_end)
            if SEVERITY_RANK.get(f["severity"], -1) > SEVERITY_RANK.get(g["severity"], -1):
                g["severity"], g["message"] = f["severity"], f["message"]
    rows = list(groups.values())
    out = pd.DataFrame({
        "severity": pd.Categorical([r["severity"] for r in rows], dtype=SEVERITY_DTYPE),
        "kind": _categorical([r["kind"] for r in rows]),
        "server": pd.array([r["server"] for r in rows], dtype="string"),
        "transport": _categorical([r["transport"] for r in rows], TRANSPORTS),
        "protocol": _categorical([r["protocol"] for r in rows]),
        "flows": np.asarray([r["flows"] for r in rows], dtype="int64"),
        "clients": np.asarray([len(r["clients"]) for r in rows], dtype="int64"),
        "first_seen": pd.Series([r["first_seen"] for r in rows], dtype=TIME_DTYPE).array,
        "last_seen": pd.Series([r["last_seen"] for r in rows], dtype=TIME_DTYPE).array,
        "message": pd.array([r["message"] for r in rows], dtype="string"),
    })
    return _worst_first(out, "severity", "flows")


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
    if name in PORT_COLUMNS or name in COUNTER_COLUMNS or name == "confidence":
        return col.to_numpy().tolist()
    if name in ("assigned", "meta", "findings"):
        return col.tolist()
    values = col.astype(object).tolist()
    return [None if v is None or v is pd.NA or v != v else str(v) for v in values]


def frame_records(flows: pd.DataFrame) -> list[dict[str, Any]]:
    """Back from a flows DataFrame to record dicts (epoch-second floats), for the sinks."""
    cols = {name: _column(flows, name) for name in FLOW_COLUMNS}
    out = []
    for values in zip(*cols.values(), strict=True):
        d = dict(zip(FLOW_COLUMNS, values, strict=True))
        if d["pcap"] is None:
            del d["pcap"]
        d["assigned"] = list(d["assigned"])
        d["meta"] = dict(d["meta"])
        d["findings"] = [dict(f) for f in d["findings"]]
        out.append(d)
    return out
