"""The columns of every table portwatch writes, defined once (docs/schema.md describes them).

Three tables, each used by every output format and by the DataFrames:

- flows (`FLOW_COLUMNS`): one row per flow, `FlowRecord.as_dict()`'s keys in its order. jsonl and
  parquet, the SQLite ``flows`` table, the csv sink (plus the flat metadata columns `META_COLUMNS`,
  then ``meta`` as JSON, last), `portwatch.frames.flows_frame` and `portwatch.read`.
- findings (`FINDING_COLUMNS`): one row per server endpoint, transport, kind and protocol:
  ``analyze --findings-only``, `Analysis.summary()` and `report.summary.FindingGroup.as_row`.
- servers (`SERVER_COLUMNS`): one row per server endpoint: ``analyze --servers``, baselines'
  ``servers`` list, `Analysis.servers` (which adds a few columns of its own, `SERVER_FRAME_EXTRA`).

Names: the server is always ``dst_ip``/``dst_port`` (the flow's destination), the client
``src_ip``/``src_port``; ``flows`` counts flows wherever a row stands for several. Lists
(``assigned``, ``protocols``) are lists in jsonl, parquet, SQLite (JSON text) and the DataFrames;
a csv cell holds them joined by `LIST_SEP` (a space: service and protocol names never hold one),
and `portwatch.read` splits them back into lists.
"""

from __future__ import annotations

FLOW_COLUMNS: tuple[str, ...] = (
    "flow_id", "community_id", "pcap", "ts_start", "ts_end", "duration", "transport", "src_ip", "src_port",
    "dst_ip", "dst_port", "orientation", "protocol", "confidence", "assigned", "packets_c2s", "packets_s2c",
    "bytes_c2s", "bytes_s2c", "state", "history", "meta", "findings",
)

# Metadata analysts filter on, flattened into csv columns (named as in `meta`; empty when absent).
META_COLUMNS: tuple[str, ...] = (
    "sni", "alpn", "ja3", "ja4", "ja3s", "hassh", "hassh_server", "ssh_client", "ssh_server", "http_host",
    "http_user_agent", "dns_query",
)

# csv: the flow columns, the flat metadata, `findings` (JSON), and `meta` whole (JSON) as the last column.
CSV_FLOW_COLUMNS: tuple[str, ...] = (
    *(c for c in FLOW_COLUMNS if c not in ("meta", "findings")), *META_COLUMNS, "findings", "meta",
)

FINDING_COLUMNS: tuple[str, ...] = (
    "severity", "kind", "dst_ip", "dst_port", "transport", "protocol", "flows", "clients", "clients_capped",
    "first_seen", "last_seen", "message",
)

SERVER_COLUMNS: tuple[str, ...] = (
    "dst_ip", "dst_port", "transport", "protocols", "assigned", "clients", "clients_capped", "flows",
    "bytes_c2s", "bytes_s2c", "first_seen", "last_seen",
)
# `Analysis.servers` adds these to SERVER_COLUMNS (derived from the flows' findings and metadata).
SERVER_FRAME_EXTRA: tuple[str, ...] = ("server", "protocol", "max_severity", "kinds", "identity")

LIST_SEP = " "  # csv: how a list cell (assigned, protocols) is joined
LIST_COLUMNS = frozenset({"assigned", "protocols"})

TIME_COLUMNS = ("ts_start", "ts_end")
PORT_COLUMNS = ("src_port", "dst_port")
COUNTER_COLUMNS = ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c")


def server_label(ip: str, port: int) -> str:
    """``ip:port`` (``[ip]:port`` for IPv6), as the console shows a server."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def join_list(values: object) -> str:
    return LIST_SEP.join(str(v) for v in values or ())  # type: ignore[attr-defined]


def split_list(cell: str | None) -> list[str]:
    return [v for v in (cell or "").split(LIST_SEP) if v]
